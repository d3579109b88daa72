//! Factor changes and account recovery: the fresh proof a change needs, enrollment of TOTP and recovery codes, removal, and the recovery routes.

use super::*;

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> ChallengeRoutes<F, S, P> {
    /// Adding the first authenticator app, or replacing the one there is.
    pub(super) async fn totp_change(&self, subject: &Subject) -> Result<FactorChange, Reply> {
        let methods = self
            .engine
            .enrolled_methods(subject)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(if methods.contains(&Method::Totp) {
            FactorChange::Replace(Method::Totp)
        } else {
            FactorChange::Add(Method::Totp)
        })
    }

    /// Whether the request's assurance allows `change` (see
    /// [`Engine::authorize_change`]): `Ok`, or the challenge to answer
    /// with (returning to this route afterwards), or the refusal.
    pub(super) async fn fresh_enough(
        &self,
        request: &Incoming<'_>,
        subject: &Subject,
        change: FactorChange,
    ) -> Result<(), Reply> {
        let verified = self.verify(request, subject.clone());
        let check = self
            .engine
            .authorize_change(subject, verified.as_ref().ok(), change)
            .await
            .map_err(|e| unavailable(&e))?;
        let policy = match check {
            ChangeCheck::Allowed => return Ok(()),
            ChangeCheck::Prove(policy) => policy,
            ChangeCheck::Refused(why) => return Err(error_reply(403, "change_refused", why)),
        };
        Err(self.challenge_for(request, verified, &policy))
    }

    /// The challenge for `policy`, coming back to this route afterwards.
    pub(super) fn challenge_for(
        &self,
        request: &Incoming<'_>,
        verified: Result<stepup_core::Assurance, ChallengeReason>,
        policy: &Policy,
    ) -> Reply {
        let s = &self.settings;
        if request.navigation && !matches!(request.method, "GET" | "HEAD") {
            // A browser's form (remove a factor, new recovery codes): back
            // to the page it was on, to submit it again; its route answers
            // POSTs only.
            let back = s.target().referred_from(request.referer);
            return self.guard.challenge_to_resubmit(&back, verified, policy);
        }
        let back = s
            .target()
            .return_to(&format!("{}{}", s.page().as_str(), request.path));
        self.guard
            .challenge_for(request.navigation, &back, verified, policy)
    }

    /// The answer to a factor removal.
    pub(super) fn changed(
        &self,
        request: &Incoming<'_>,
        outcome: Result<(), ChallengeError>,
        what: &str,
        done: Text,
    ) -> Reply {
        match outcome {
            Ok(()) if is_json(request) => json_reply(200, &json!({"removed": what})),
            Ok(()) => {
                let page = self.enroll_page(request);
                let done = self.t(page.lang(), done).to_owned();
                enroll_html(200, &page.done(done))
            }
            Err(e) => self.failed_json(&e),
        }
    }

    pub(super) async fn recovery_status(&self, subject: &Subject) -> Reply {
        match self.engine.pending_recovery(subject).await {
            Ok(Some(pending)) => json_reply(
                200,
                &json!({
                    "pending": true,
                    "requested_at": pending.requested_at.as_unix_seconds(),
                    "ready_at": pending.ready_at.as_unix_seconds(),
                    "ready": pending.is_ready(self.settings.clock().now()),
                }),
            ),
            Ok(None) => json_reply(200, &json!({"pending": false})),
            Err(e) => unavailable(&e),
        }
    }

    pub(super) async fn recovery_start(
        &self,
        request: &Incoming<'_>,
        subject: &Subject,
    ) -> Result<Reply, Reply> {
        let verified = self.verify(request, subject.clone());
        let check = self
            .engine
            .authorize_recovery(subject, verified.as_ref().ok())
            .await
            .map_err(|e| unavailable(&e))?;
        match check {
            ChangeCheck::Allowed => {}
            ChangeCheck::Prove(policy) => {
                return Err(self.challenge_for(request, verified, &policy));
            }
            ChangeCheck::Refused(why) => return Err(error_reply(403, "change_refused", why)),
        }
        match self.engine.start_account_recovery(subject).await {
            Ok(pending) => Ok(json_reply(
                202,
                &json!({
                    "pending": true,
                    "requested_at": pending.requested_at.as_unix_seconds(),
                    "ready_at": pending.ready_at.as_unix_seconds(),
                    "ready": pending.is_ready(self.settings.clock().now()),
                }),
            )),
            // A refusal (no notice sink, too many starts) is said as such;
            // only a store failure is a 503.
            Err(e) => Err(self.failed_json(&e)),
        }
    }

    /// The enrollment page in the request's language.
    pub(super) fn enroll_page(&self, request: &Incoming<'_>) -> EnrollPage {
        EnrollPage::new(self.settings.page().as_str(), self.settings.fallback())
            .in_language(self.catalogue.clone(), self.language(request))
            .digits(self.engine.totp_config().digits())
    }

    pub(super) async fn totp_start(&self, request: &Incoming<'_>, subject: &Subject) -> Reply {
        let enrollment = match self
            .engine
            .start_totp_enrollment(subject, subject.id())
            .await
        {
            Ok(e) => e,
            Err(e) => return unavailable(&e),
        };
        let qr = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(enrollment.qr_png())
        );
        if is_json(request) {
            return json_reply(
                200,
                &json!({
                    "otpauth_uri": enrollment.otpauth_uri(),
                    "manual_entry_key": enrollment.manual_entry_key(),
                    "qr_png_data_url": qr,
                }),
            );
        }
        enroll_html(
            200,
            &self
                .enroll_page(request)
                .scan(qr, enrollment.manual_entry_key().to_owned()),
        )
    }

    pub(super) async fn totp_confirm(
        &self,
        request: &Incoming<'_>,
        subject: &Subject,
        input: StepUpInput,
    ) -> Reply {
        let code = input.code.as_deref().unwrap_or("");
        let outcome = self
            .engine
            .confirm_totp_enrollment(self.attempt(request, subject), code)
            .await;
        match (outcome, is_json(request)) {
            (Ok(()), true) => json_reply(200, &json!({"enrolled": "totp"})),
            (Ok(()), false) => {
                let page = self.enroll_page(request);
                let done = self.t(page.lang(), Text::TotpEnrolled).to_owned();
                enroll_html(200, &page.done(done))
            }
            (Err(e), true) => self.failed_json(&e),
            (Err(e), false) => {
                let status = failure_status(&e);
                if status == 503 {
                    return unavailable(&e);
                }
                let page = self.enroll_page(request);
                let error = self.user_message(&e, page.lang());
                enroll_html(status, &page.error(error).start())
            }
        }
    }

    pub(super) async fn recovery_codes(&self, request: &Incoming<'_>, subject: &Subject) -> Reply {
        let codes = match self
            .engine
            .generate_recovery_codes(subject, RECOVERY_CODES)
            .await
        {
            Ok(codes) => codes.iter().map(|c| c.grouped()).collect::<Vec<_>>(),
            Err(e) => return unavailable(&e),
        };
        if is_json(request) {
            return json_reply(200, &json!({"recovery_codes": codes}));
        }
        enroll_html(200, &self.enroll_page(request).codes(codes))
    }
}
