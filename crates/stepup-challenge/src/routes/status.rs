//! `GET /status` and `POST /drop`.

use super::*;

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> ChallengeRoutes<F, S, P> {
    pub(super) fn status(&self, request: &Incoming<'_>) -> Reply {
        let Some(subject) = &request.subject else {
            return Reply::login_required();
        };
        let query: StatusQuery = parse_query(request.query);
        let policy = match query.policy.as_deref().map(Policy::parse) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => return error_reply(400, "policy", &e.to_string()),
        };
        let now = self.settings.clock().now();
        let (mut body, satisfied) = match self.verify(request, subject.clone()) {
            Ok(a) => {
                let methods: Vec<_> = a
                    .proofs()
                    .iter()
                    .map(|p| {
                        json!({
                            "method": p.method().to_string(),
                            "proven_at": p.at().as_unix_seconds(),
                            "age": now.duration_since(p.at()).as_secs(),
                        })
                    })
                    .collect();
                let satisfied = policy.as_ref().is_some_and(|p| a.satisfies(p, now));
                let body = json!({
                    "assured": true,
                    "level": a.level(),
                    "acr": a.acr(),
                    "amr": a.amr(),
                    "methods": methods,
                    "expires_at": a.expires_at().as_unix_seconds(),
                });
                (body, satisfied)
            }
            Err(reason) => (json!({"assured": false, "reason": reason.code()}), false),
        };
        if let Some(policy) = &policy {
            insert(&mut body, "policy", json!(policy.to_string()));
            insert(&mut body, "satisfied", json!(satisfied));
        }
        json_reply(200, &body)
    }

    pub(super) fn drop_assurance(&self, request: &Incoming<'_>) -> Reply {
        let s = &self.settings;
        if let Err(forbidden) = self.same_origin(request) {
            return forbidden;
        }
        let reply = if is_json(request) {
            json_reply(200, &json!({"dropped": true}))
        } else {
            let input: StepUpInput = match request.body {
                Body::Read(bytes) => serde_urlencoded::from_bytes(bytes).unwrap_or_default(),
                Body::TooLarge => StepUpInput::default(),
            };
            Reply::see_other(s.return_path(input.return_to.as_deref()).as_str())
        };
        reply.with_header("set-cookie", s.cookie().delete_cookie())
    }
}
