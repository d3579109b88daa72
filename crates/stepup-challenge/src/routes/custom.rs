//! The routes of the application's own methods: an approval started,
//! polled, approved on the other device (the page there), and finished
//! (through the step-up route, [`Factor::Approval`]); codes go through the
//! step-up route too ([`Factor::Custom`]).

use super::*;
use crate::Approval;

#[derive(Deserialize, Default)]
struct ApprovalQuery {
    approval: Option<String>,
    secret: Option<String>,
    /// Text from a form; a string or a number in JSON (the start answers
    /// a number).
    number: Option<serde_json::Value>,
}

impl ApprovalQuery {
    fn number(&self) -> String {
        match &self.number {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => match n.as_f64() {
                // 42 and 42.0 alike.
                Some(f) if f.fract() == 0.0 && (0.0..1000.0).contains(&f) => (f as u16).to_string(),
                _ => n.to_string(),
            },
            _ => String::new(),
        }
    }
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> ChallengeRoutes<F, S, P> {
    /// `POST /custom/{name}/start`: sends an approval request to the user's
    /// other device; a form gets the page waiting for it, JSON the
    /// approval's id.
    pub(super) async fn approval_start(
        &self,
        request: &Incoming<'_>,
        subject: &Subject,
        method: Method,
        input: StepUpInput,
    ) -> Reply {
        let base = self.settings.page().as_str().trim_end_matches('/');
        let attempt = self.attempt_for(request, subject, input.confirmation.as_deref());
        let started = self.engine.start_approval(attempt, method, base).await;
        let return_to = self.settings.return_path(input.return_to.as_deref());
        match started {
            Ok(started) if is_json(request) => json_reply(
                200,
                &json!({
                    "approval": started.id,
                    "number": started.number,
                    "expires_at": started.expires_at.as_unix_seconds(),
                    "status_url": format!("{base}/custom/{}/status?approval={}", method.name(), started.id),
                    "finish_url": format!("{base}/custom/{}/finish", method.name()),
                }),
            ),
            Ok(started) => {
                let (message, _) = self.reason(input.why.as_deref());
                let page = self
                    .new_page(request, &return_to, message)
                    .awaiting_approval(method, &started.id, started.number);
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
                    crate::Form::Custom,
                )
                .await
            }
        }
    }

    /// Whether `method` is an approval method the application added.
    fn has_approvals(&self, method: Method) -> bool {
        self.engine
            .custom_factor(method)
            .is_some_and(|f| matches!(f.kind(), crate::CustomKind::Approval { .. }))
    }

    /// `GET /custom/{name}/status?approval=…`: `{"state": "pending" |
    /// "approved" | "refused" | "gone"}` for the logged-in user's own
    /// approval.
    pub(super) async fn approval_status(&self, request: &Incoming<'_>, method: Method) -> Reply {
        let Some(subject) = &request.subject else {
            return Reply::login_required();
        };
        let query: ApprovalQuery = parse_query(request.query);
        let id = query.approval.unwrap_or_default();
        if !stepup_http::is_random_id(&id) {
            return json_reply(200, &json!({"state": "gone"}));
        }
        match self.engine.approval_state(subject, method, &id).await {
            Ok(state) => json_reply(200, &json!({"state": state.as_str()})),
            Err(e) => unavailable(&e),
        }
    }

    /// `GET /custom/{name}/approve?secret=…`: the other device's page —
    /// what is approved and one button. Nothing is approved by a `GET`.
    pub(super) async fn approval_page(&self, request: &Incoming<'_>, method: Method) -> Reply {
        if !self.has_approvals(method) {
            return Reply::new(404, None, "");
        }
        let query: ApprovalQuery = parse_query(request.query);
        let secret = query.secret.unwrap_or_default();
        let lang = self.language(request);
        let base = self.settings.page().as_str();
        let page = match self.engine.approval_shown(method, &secret).await {
            Ok(Some(shown)) => crate::ApprovePage::asking(base, method.name(), &secret, shown),
            Ok(None) => crate::ApprovePage::answered(base, &self.title_of(method), Approval::Gone),
            Err(e) => return unavailable(&e),
        };
        let page = page.in_language(self.catalogue.clone(), lang);
        match page.html() {
            // The link's secret is in this page: never cached, never sent on.
            Ok(html) => html_reply(200, html, lang),
            Err(_) => unavailable_because("template"),
        }
    }

    /// The page title of the custom method `method`.
    fn title_of(&self, method: Method) -> String {
        self.engine
            .custom_factor(method)
            .map(|f| f.title().to_owned())
            .unwrap_or_default()
    }

    /// `POST /custom/{name}/approve` (`secret`, `number`): approves once
    /// with the number the browser that asked shows; a wrong number voids
    /// the approval. The
    /// approving device need not be logged in — the link is the
    /// capability —, but the form must come from this origin (the page
    /// above).
    pub(super) async fn approve(
        &self,
        request: &Incoming<'_>,
        method: Method,
    ) -> Result<Reply, Reply> {
        self.same_origin(request)?;
        if !self.has_approvals(method) {
            return Ok(Reply::new(404, None, ""));
        }
        let bytes = body_bytes(request)?;
        let input: ApprovalQuery = if is_json(request) {
            serde_json::from_slice(bytes).map_err(|_| malformed())?
        } else {
            serde_urlencoded::from_bytes(bytes).map_err(|_| malformed())?
        };
        let number = input.number();
        let secret = input.secret.unwrap_or_default();
        let approval = match self.engine.approve(method, &secret, &number).await {
            Ok(approval) => approval,
            Err(e) => return Ok(unavailable(&e)),
        };
        // A refused link is not counted against the client's address: that
        // would let anyone lock an address out of every step-up without
        // logging in, and a 256-bit secret is not guessed anyway (a wrong
        // number used the link up: one guess per link).
        let (status, answer) = match approval {
            Approval::Approved => (200, "approved"),
            Approval::WrongNumber => (403, "wrong_number"),
            _ => (404, "gone"),
        };
        if is_json(request) {
            return Ok(json_reply(
                status,
                &json!({"approved": approval == Approval::Approved, "answer": answer}),
            ));
        }
        let lang = self.language(request);
        let page = crate::ApprovePage::answered(
            self.settings.page().as_str(),
            &self.title_of(method),
            approval,
        )
        .in_language(self.catalogue.clone(), lang);
        Ok(match page.html() {
            Ok(html) => html_reply(status, html, lang),
            Err(_) => unavailable_because("template"),
        })
    }
}
