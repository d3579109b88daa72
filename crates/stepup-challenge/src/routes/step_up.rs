//! The challenge page and the step-up POSTs: TOTP, password, recovery code, e-mail/SMS codes; how a success and a failure are answered.

use super::*;

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> ChallengeRoutes<F, S, P> {
    /// The challenge page in the request's language, saying `message`
    /// (stepup's own reasons in that language; the application's as it
    /// wrote them).
    pub(super) fn new_page(
        &self,
        request: &Incoming<'_>,
        return_to: &ReturnTo,
        message: String,
    ) -> ChallengePage {
        let lang = self.language(request);
        let own = [
            (GENERIC_REASON, Text::GenericReason),
            (crate::change::REASON, Text::ChangeReason),
            (crate::change::RECOVERY_REASON, Text::RecoveryReason),
        ];
        let message = match own.iter().find(|(english, _)| *english == message) {
            Some((_, text)) => self.t(lang, *text).to_owned(),
            None => message,
        };
        ChallengePage::new(self.settings.page().as_str(), return_to, message)
            .in_language(self.catalogue.clone(), lang)
    }

    pub(super) async fn page(&self, request: &Incoming<'_>) -> Reply {
        let Some(subject) = &request.subject else {
            return Reply::login_required();
        };
        let query: PageQuery = parse_query(request.query);
        let s = &self.settings;
        let return_to = s.return_path(query.return_to.as_deref());
        // Only configured text: `why` is an identifier, never the sentence.
        let (message, _) = self.reason(query.why.as_deref());
        let mut page = self.new_page(request, &return_to, message);
        if let Some(detail) = reason_detail(query.reason.as_deref()) {
            let detail = self.t(page.lang(), detail);
            page = page.detail(detail);
        }
        if query.resubmit.as_deref() == Some("1") {
            page = page.resubmit();
        }
        self.render_page(
            subject,
            page,
            200,
            query.why.as_deref(),
            query.confirmation.as_deref(),
        )
        .await
    }

    /// A page returning to a kept form's confirmation page says what will
    /// happen, from the kept record only.
    async fn say_what_follows(&self, subject: &Subject, page: ChallengePage) -> ChallengePage {
        let Ok(return_to) = ReturnTo::parse(page.return_to()) else {
            return page;
        };
        match self.continuing(subject, &return_to).await {
            Some(kept) => page.continues(kept.action(), kept.back()),
            None => page,
        }
    }

    /// The registered reason `why` names, and the methods that can satisfy
    /// its policy (empty: any).
    pub(super) fn reason(&self, why: Option<&str>) -> Reason {
        why.and_then(|id| self.settings.reason(id))
            .unwrap_or_else(|| (GENERIC_REASON.to_owned(), Vec::new()))
    }

    /// The page with the subject's methods — only those that can satisfy
    /// the policy `why` names, when it names one — confirming the bound
    /// action of the ceremony `confirmation` when it is still waiting
    /// (its summary from the server-side record only).
    /// The page after something sent before an attempt failed (a code, an
    /// approval request): the error on `form`, or `503`.
    pub(super) async fn failed_page(
        &self,
        request: &Incoming<'_>,
        subject: &Subject,
        input: &StepUpInput,
        return_to: &ReturnTo,
        error: &ChallengeError,
        form: crate::Form,
    ) -> Reply {
        let status = failure_status(error);
        if status == 503 {
            return unavailable(error);
        }
        let (message, _) = self.reason(input.why.as_deref());
        let page = self.new_page(request, return_to, message);
        let sentence = self.user_message(error, page.lang());
        let page = page.error(sentence, form);
        let reply = self.render_for(subject, page, status, input).await;
        self.retry_after(reply, error)
    }

    /// [`render_page`](Self::render_page) for a form's `input` (its
    /// reason and bound action carried on).
    pub(super) async fn render_for(
        &self,
        subject: &Subject,
        page: ChallengePage,
        status: u16,
        input: &StepUpInput,
    ) -> Reply {
        self.render_page(
            subject,
            page,
            status,
            input.why.as_deref(),
            input.confirmation.as_deref(),
        )
        .await
    }

    pub(super) async fn render_page(
        &self,
        subject: &Subject,
        mut page: ChallengePage,
        status: u16,
        why: Option<&str>,
        confirmation: Option<&str>,
    ) -> Reply {
        let methods = match self.engine.enrolled_methods(subject).await {
            Ok(m) => m,
            Err(e) => return unavailable(&e),
        };
        page = self.say_what_follows(subject, page).await;
        let lang = page.lang();
        if let Some(id) = confirmation {
            match self.engine.pending_action(subject, id).await {
                Ok(Some(action)) => {
                    if !action.confirmed_with().is_empty() {
                        page = page.detail(self.t(lang, Text::DetailOneMoreWay));
                    }
                    page = page.confirming(action.id(), action.summary());
                }
                Ok(None) => page = page.detail(self.t(lang, Text::DetailConfirmationGone)),
                Err(e) => return unavailable(&e.into()),
            }
        }
        let (_, allowed) = self.reason(why);
        if let Some(id) = why {
            page = page.why(id);
        }
        let offered = methods
            .iter()
            .filter(|m| allowed.is_empty() || allowed.iter().any(|a| m.satisfies(a)));
        for method in offered {
            page = match method {
                Method::Totp => page.with_totp(self.engine.totp_config().digits()),
                Method::Password => page.with_password(),
                Method::RecoveryCode => page.with_recovery_code(),
                Method::Passkey | Method::DeviceBoundPasskey => page.with_passkey(),
                Method::EmailCode => page.with_code_channel(Channel::Email),
                Method::SmsCode => page.with_code_channel(Channel::Sms),
                Method::Custom(_) => match self.engine.custom_factor(*method) {
                    Some(factor) => {
                        let code = match factor.kind() {
                            crate::CustomKind::Code { max_len } => Some(max_len.min(64)),
                            _ => None,
                        };
                        page.with_custom(*method, factor.title(), code)
                    }
                    None => page,
                },
                _ => page,
            };
        }
        // Identity providers (not for a bound action: its grant is the
        // engine's methods' to make).
        let mut origins = Vec::new();
        if page.confirmation().is_none() {
            for upstream in self.upstreams_for(subject, &allowed).await {
                page = page.with_upstream(upstream.name(), upstream.title());
                origins.push(upstream.origin().to_owned());
            }
        }
        self.engine.page_shown(subject);
        let rendered = match &self.renderer {
            Some(render) => Ok(render(&page)),
            None => page.html(),
        };
        match rendered {
            // The start's form is answered with a redirect to the provider.
            Ok(html) => origins
                .iter()
                .fold(html_reply(status, html, lang), |reply, origin| {
                    reply.with_form_action(origin)
                }),
            Err(_) => unavailable_because("template"),
        }
    }

    pub(super) async fn step_up(
        &self,
        request: &Incoming<'_>,
        subject: &Subject,
        factor: Factor,
        input: StepUpInput,
    ) -> Reply {
        let json = is_json(request);
        let attempt = self
            .attempt_for(request, subject, input.confirmation.as_deref())
            .previous_token(Self::previous_token(request));
        let channel = input
            .channel
            .as_deref()
            .and_then(Channel::parse)
            .unwrap_or(Channel::Email);
        let form = factor.form();
        let secret = match factor {
            Factor::Password => input.password.as_deref(),
            Factor::Approval(_) => input.approval.as_deref(),
            Factor::Totp | Factor::RecoveryCode | Factor::Code | Factor::Custom(_) => {
                input.code.as_deref()
            }
        }
        .unwrap_or("");
        let engine = &self.engine;
        let outcome = match factor {
            Factor::Totp => engine.step_up_totp(attempt, secret).await,
            Factor::Password => engine.step_up_password(attempt, secret).await,
            Factor::RecoveryCode => engine.step_up_recovery_code(attempt, secret).await,
            Factor::Code => {
                let challenge_id = input.challenge_id.as_deref().unwrap_or("");
                engine
                    .step_up_code(attempt, channel, challenge_id, secret)
                    .await
            }
            Factor::Custom(method) => engine.step_up_custom_code(attempt, method, secret).await,
            Factor::Approval(method) => engine.finish_approval(attempt, method, secret).await,
        };
        let return_to = self.settings.return_path(input.return_to.as_deref());
        match outcome {
            Ok(token) => {
                let confirmed = self.confirmed(subject, input.confirmation.as_deref()).await;
                self.succeeded(&token, json, &return_to, confirmed)
            }
            Err(error) if json => self.failed_json(&error),
            Err(error) => {
                let status = failure_status(&error);
                if status == 503 {
                    return unavailable(&error);
                }
                let (message, _) = self.reason(input.why.as_deref());
                let mut page = self.new_page(request, &return_to, message);
                let lang = page.lang();
                page = page.error(self.user_message(&error, lang), form);
                // A wrong code keeps the code form up, for the same challenge.
                if let (Factor::Code, Some(id), ChallengeError::Wrong { .. }) =
                    (factor, input.challenge_id.as_deref(), &error)
                {
                    page = page.awaiting_code(channel, id, self.t(lang, Text::RegisteredAddress));
                }
                // Not approved yet: keep waiting for the same approval.
                if let (Factor::Approval(method), ChallengeError::ApprovalPending) =
                    (factor, &error)
                {
                    match engine.approval_number_of(subject, method, secret).await {
                        Ok(Some(number)) => page = page.awaiting_approval(method, secret, number),
                        Ok(None) => {}
                        Err(e) => return unavailable(&e),
                    }
                }
                let reply = self.render_for(subject, page, status, &input).await;
                self.retry_after(reply, &error)
            }
        }
    }

    pub(super) async fn send_code(
        &self,
        request: &Incoming<'_>,
        subject: &Subject,
        input: StepUpInput,
    ) -> Reply {
        let Some(channel) = input.channel.as_deref().and_then(Channel::parse) else {
            return error_reply(400, "channel", "Choose `email` or `sms`.");
        };
        let return_to = self.settings.return_path(input.return_to.as_deref());
        match self
            .engine
            .send_code(
                self.attempt_for(request, subject, input.confirmation.as_deref()),
                channel,
            )
            .await
        {
            Ok(sent) if is_json(request) => json_reply(
                200,
                &json!({
                    "challenge_id": sent.challenge_id,
                    "channel": channel.as_str(),
                    "destination_hint": sent.destination_hint,
                    "expires_at": sent.expires_at.as_unix_seconds(),
                }),
            ),
            Ok(sent) => {
                let (message, _) = self.reason(input.why.as_deref());
                let page = self.new_page(request, &return_to, message).awaiting_code(
                    channel,
                    &sent.challenge_id,
                    &sent.destination_hint,
                );
                self.render_for(subject, page, 200, &input).await
            }
            Err(error) if is_json(request) => self.failed_json(&error),
            Err(error) => {
                self.failed_page(
                    request,
                    subject,
                    &input,
                    &return_to,
                    &error,
                    crate::Form::Code,
                )
                .await
            }
        }
    }

    /// A successful step-up: the cookie, and `303` back or the JSON
    /// summary. Made for the bound action of the ceremony `confirmation`,
    /// its grant now waits, and the JSON names it (`grant`: send it back
    /// as `Stepup-Grant`).
    pub(super) fn succeeded(
        &self,
        token: &IssuedToken,
        json: bool,
        return_to: &ReturnTo,
        confirmation: Option<(&str, bool)>,
    ) -> Reply {
        let reply = if json {
            let a = token.assurance();
            let mut body = json!({
                "ok": true,
                "level": a.level(),
                "acr": a.acr(),
                "amr": a.amr(),
                "expires_at": a.expires_at().as_unix_seconds(),
                "return_to": return_to.as_str(),
            });
            match confirmation {
                Some((id, true)) => insert(&mut body, "grant", json!(id)),
                // Recorded: the policy needs another method for it.
                Some((id, false)) => insert(&mut body, "pending_confirmation", json!(id)),
                None => {}
            }
            json_reply(200, &body)
        } else {
            Reply::see_other(return_to.as_str())
        };
        reply.with_header(
            "set-cookie",
            self.settings
                .cookie()
                .set_cookie(token.value(), token.max_age()),
        )
    }

    /// After a step-up made for the ceremony `confirmation`: its id, and
    /// whether it became the grant (`false`: still open, the policy needs
    /// another method).
    pub(super) async fn confirmed<'a>(
        &self,
        subject: &Subject,
        confirmation: Option<&'a str>,
    ) -> Option<(&'a str, bool)> {
        let id = confirmation?;
        let open = matches!(self.engine.pending_action(subject, id).await, Ok(Some(_)));
        Some((id, !open))
    }

    /// The error as the page says it, in `lang`: whole sentences, a
    /// lockout in minutes rather than a timestamp.
    pub(super) fn user_message(&self, error: &ChallengeError, lang: Lang) -> String {
        let c = &self.catalogue;
        let text = match error {
            ChallengeError::LockedOut { .. } => {
                let minutes = self.wait_seconds(error).div_ceil(60).max(1);
                let duration = c.minutes(lang, minutes);
                c.format(lang, Text::ErrorLockedOut, &[("duration", &duration)])
            }
            ChallengeError::Wrong { few_left: true } => {
                c.get(lang, Text::ErrorWrongFewLeft).to_owned()
            }
            ChallengeError::Wrong { few_left: false } => c.get(lang, Text::ErrorWrong).to_owned(),
            ChallengeError::Disabled(method) => {
                c.format(lang, Text::ErrorDisabled, &[("method", method)])
            }
            ChallengeError::NotEnrolled(method) => {
                c.format(lang, Text::ErrorNotEnrolled, &[("method", method)])
            }
            ChallengeError::Format(detail) => {
                c.format(lang, Text::ErrorFormat, &[("detail", detail)])
            }
            ChallengeError::Recovery(detail) => {
                c.format(lang, Text::ErrorRecovery, &[("detail", detail)])
            }
            ChallengeError::AlreadyUsed => c.get(lang, Text::ErrorAlreadyUsed).to_owned(),
            ChallengeError::NoPendingCode => c.get(lang, Text::ErrorNoPendingCode).to_owned(),
            ChallengeError::NoPendingCeremony => {
                c.get(lang, Text::ErrorNoPendingCeremony).to_owned()
            }
            ChallengeError::NoPendingAction => c.get(lang, Text::ErrorNoPendingAction).to_owned(),
            ChallengeError::PasskeyRejected => c.get(lang, Text::ErrorPasskeyRejected).to_owned(),
            ChallengeError::NoPendingEnrollment => {
                c.get(lang, Text::ErrorNoPendingEnrollment).to_owned()
            }
            ChallengeError::ApprovalPending => c.get(lang, Text::ErrorApprovalPending).to_owned(),
            ChallengeError::ApprovalRefused => c.get(lang, Text::ApprovalRefused).to_owned(),
            // Answered as `unavailable` before any page shows them.
            other => format!("{other}."),
        };
        // As before: a sentence starts with a capital ("Totp is paused …").
        let mut chars = text.chars();
        match chars.next() {
            Some(first) => format!("{}{}", first.to_uppercase(), chars.as_str()),
            None => text,
        }
    }

    /// Seconds until a lockout ends (0 for other errors).
    pub(super) fn wait_seconds(&self, error: &ChallengeError) -> u64 {
        match error {
            ChallengeError::LockedOut { until } => until
                .as_unix_seconds()
                .saturating_sub(self.settings.clock().now().as_unix_seconds()),
            _ => 0,
        }
    }

    /// A JSON-only route's answer: `ok` on success, the refusal as JSON.
    #[cfg(feature = "passkey")]
    pub(super) fn answer<T>(
        &self,
        outcome: Result<T, ChallengeError>,
        ok: impl FnOnce(T) -> Reply,
    ) -> Reply {
        match outcome {
            Ok(value) => ok(value),
            Err(e) => self.failed_json(&e),
        }
    }

    pub(super) fn failed_json(&self, error: &ChallengeError) -> Reply {
        let status = failure_status(error);
        if status == 503 {
            return unavailable(error);
        }
        let mut body = json!({"error": error_code(error), "message": error.to_string()});
        match error {
            ChallengeError::Wrong { few_left } => {
                insert(&mut body, "few_attempts_left", json!(few_left));
            }
            ChallengeError::LockedOut { until } => {
                insert(&mut body, "locked_until", json!(until.as_unix_seconds()));
            }
            _ => {}
        }
        self.retry_after(json_reply(status, &body), error)
    }

    /// A lockout's answer, page or JSON, says when it ends.
    pub(super) fn retry_after(&self, reply: Reply, error: &ChallengeError) -> Reply {
        if matches!(error, ChallengeError::LockedOut { .. }) {
            reply.with_header("retry-after", self.wait_seconds(error).max(1).to_string())
        } else {
            reply
        }
    }
}
