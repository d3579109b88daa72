//! Step-ups at an identity provider ([`Upstream`]): the start (a `303`
//! there), the callback (a page that continues from this origin, so the
//! `SameSite=Strict` cookies come along) and the finish (the answer
//! verified, the cookie set, `303` back).

use super::*;
use crate::{Upstream, UpstreamError, UpstreamFinish, UpstreamStart};

/// The callback's parameters passed on to `finish` (nothing else of the
/// query is carried, and what is, is re-encoded).
#[derive(Deserialize, serde::Serialize, Default)]
struct CallbackQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> ChallengeRoutes<F, S, P> {
    /// Offers a step-up at an upstream identity provider (OpenID Connect
    /// with stepup-oidc's `OidcMethod`, or any [`Upstream`]) on the
    /// challenge page, to the users it is [linked](Upstream::linked) to,
    /// where one of its [levels](Upstream::levels) can satisfy the route's
    /// policy — beside the local methods: a policy can be met either way.
    /// An upstream with the same name replaces the earlier one.
    ///
    /// Register `{origin}{mount}/upstream/{name}/callback` as the redirect
    /// URI at the provider. Not offered for a bound action's confirmation
    /// (its grant is made by local methods only).
    #[must_use]
    pub fn with_upstream(mut self, upstream: Arc<dyn Upstream>) -> Self {
        self.upstreams.add(upstream);
        self
    }

    /// The upstreams the page offers `subject` for a policy whose methods
    /// are `allowed` (empty: any): those with a level whose method can
    /// satisfy it. One whose account lookup fails is left out (and
    /// logged); the others are offered.
    pub(super) async fn upstreams_for(
        &self,
        subject: &Subject,
        allowed: &[Method],
    ) -> Vec<Arc<dyn Upstream>> {
        let mut offered = Vec::new();
        for upstream in self.upstreams.iter() {
            if level_for(upstream.as_ref(), allowed).is_none() {
                continue;
            }
            match upstream.linked(subject).await {
                Ok(true) => offered.push(upstream.clone()),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(target: "stepup", upstream = upstream.name(), kind = e.store(), "identity provider not offered: its account lookup failed");
                }
            }
        }
        offered
    }

    /// `POST /upstream/{name}/start` (`return_to`, `why`): `303` to the
    /// provider (JSON: `{"redirect": url}`).
    pub(super) async fn upstream_start(
        &self,
        request: &Incoming<'_>,
        subject: &Subject,
        name: &str,
        input: StepUpInput,
    ) -> Reply {
        let Some(upstream) = self.upstreams.get(name) else {
            return Reply::new(404, None, "");
        };
        let return_to = self.settings.return_path(input.return_to.as_deref());
        let why = input.why.as_deref();
        let (_, allowed) = self.reason(why);
        let level = if input.confirmation.is_some() {
            // A bound action's grant is made by the engine's methods only.
            Err(UpstreamError::NoLevel)
        } else {
            match level_for(upstream.as_ref(), &allowed) {
                None => Err(UpstreamError::NoLevel),
                Some(asked) => match upstream.linked(subject).await {
                    Ok(true) => Ok(asked),
                    Ok(false) => Err(UpstreamError::NotLinked),
                    Err(e) => Err(UpstreamError::Unavailable(format!(
                        "account lookup: {}",
                        e.store()
                    ))),
                },
            }
        };
        let (level, method) = match level {
            Ok(asked) => asked,
            Err(error) => {
                return self
                    .upstream_refused(request, subject, name, &return_to, why, &error)
                    .await;
            }
        };
        // Rationed per session and subject; the page's reason and way back
        // are kept for the answer.
        if let Err(error) = self
            .engine
            .upstream_trip_start(subject, name, why, &return_to)
            .await
        {
            if is_json(request) {
                return self.failed_json(&error);
            }
            return self
                .failed_page(
                    request,
                    subject,
                    &input,
                    &return_to,
                    &error,
                    crate::Form::Upstream,
                )
                .await;
        }
        match upstream
            .start(UpstreamStart::new(subject, level, &return_to))
            .await
        {
            Ok(url) => {
                self.engine.upstream_started(subject, method);
                if is_json(request) {
                    json_reply(200, &json!({"redirect": url}))
                } else {
                    Reply::see_other(&url)
                }
            }
            Err(error) => {
                self.upstream_refused(request, subject, name, &return_to, why, &error)
                    .await
            }
        }
    }

    /// `GET /upstream/{name}/callback`: the provider's answer arrives from
    /// its site, without this site's `SameSite=Strict` cookies; a page of
    /// this origin carries it on to `finish` (nothing changes here).
    pub(super) fn upstream_callback(&self, request: &Incoming<'_>, name: &str) -> Reply {
        if self.upstreams.get(name).is_none() {
            return Reply::new(404, None, "");
        }
        let query: CallbackQuery = parse_query(request.query);
        let query = serde_urlencoded::to_string(&query).unwrap_or_default();
        let base = self.settings.page().as_str().trim_end_matches('/');
        // Only URL-encoded characters and `&`: nothing to escape but `&`.
        let finish = format!("{base}/upstream/{name}/finish?{query}").replace('&', "&amp;");
        let lang = self.language(request);
        let returning = stepup_http::escape_html(self.t(lang, Text::UpstreamReturning));
        let go_on = stepup_http::escape_html(self.t(lang, Text::UpstreamContinue));
        let html = format!(
            "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta http-equiv=\"refresh\" content=\"0;url={finish}\">\n<title>{returning}</title>\n\
             <link rel=\"stylesheet\" href=\"{base}/assets/page.css\">\n</head>\n<body>\n<main>\n\
             <p role=\"status\">{returning}</p>\n<p><a id=\"upstream-continue\" href=\"{finish}\">{go_on}</a></p>\n\
             </main>\n</body>\n</html>\n"
        );
        html_reply(200, html, lang)
    }

    /// `GET /upstream/{name}/finish`: the answer verified (by the
    /// upstream: its request taken once, for this user and session), the
    /// cookie set, `303` back to where the start said. A request that
    /// says it comes from another site is `403` — the callback's page is
    /// of this origin, so what protects the answer is that its request is
    /// single-use and bound to the user, the session and PKCE, not where
    /// the browser was sent from.
    pub(super) async fn upstream_finish(&self, request: &Incoming<'_>, name: &str) -> Reply {
        let Some(upstream) = self.upstreams.get(name) else {
            return Reply::new(404, None, "");
        };
        if request
            .sec_fetch_site
            .is_some_and(|site| site != b"same-origin")
        {
            return Reply::forbidden();
        }
        let Some(subject) = &request.subject else {
            return Reply::login_required();
        };
        let finish = UpstreamFinish::new(subject, request.query.unwrap_or(""))
            .previous(Self::previous_token(request))
            .context(request.context.as_deref());
        match upstream.finish(finish).await {
            Ok(done) => {
                self.engine
                    .upstream_finished(subject, Ok(done.method))
                    .await;
                self.engine.upstream_trip_done(subject, name).await;
                // Whatever the upstream says, only where the routes may go.
                let return_to = self.settings.return_path(Some(done.return_to.as_str()));
                self.succeeded(&done.token, false, &return_to, None)
            }
            Err(error) => {
                self.engine.upstream_finished(subject, Err(&error)).await;
                // The page the trip started from: its reason and way back.
                let trip = self
                    .engine
                    .upstream_trip(subject, name)
                    .await
                    .ok()
                    .flatten();
                let (why, return_to) = match &trip {
                    Some(trip) => (
                        trip.why.as_deref(),
                        self.settings.return_path(Some(&trip.return_to)),
                    ),
                    None => (None, self.settings.return_path(None)),
                };
                self.upstream_refused(request, subject, name, &return_to, why, &error)
                    .await
            }
        }
    }

    /// The challenge page again with what went wrong (JSON for JSON: a
    /// fixed sentence per code), or `503`; the detail goes to the log only.
    async fn upstream_refused(
        &self,
        request: &Incoming<'_>,
        subject: &Subject,
        name: &str,
        return_to: &ReturnTo,
        why: Option<&str>,
        error: &UpstreamError,
    ) -> Reply {
        tracing::warn!(target: "stepup", upstream = name, code = error.code(), error = %error, "upstream step-up refused");
        let status = error.status();
        if status == 503 {
            return unavailable_because("upstream");
        }
        if is_json(request) {
            return error_reply(status, error.code(), error.sentence());
        }
        let (message, _) = self.reason(why);
        let page = self.new_page(request, return_to, message);
        let text = match error {
            UpstreamError::Refused => Text::ErrorUpstreamRefused,
            UpstreamError::Expired => Text::ErrorUpstreamExpired,
            UpstreamError::NotLinked | UpstreamError::NoLevel => Text::ErrorUpstreamNotUsable,
            _ => Text::ErrorUpstreamRejected,
        };
        let sentence = self.t(page.lang(), text).to_owned();
        let page = page.error(sentence, crate::Form::Upstream);
        self.render_page(subject, page, status, why, None).await
    }
}

/// The lowest level of `upstream` whose method can satisfy a policy of
/// the methods `allowed` (empty: any), with that method.
fn level_for(upstream: &dyn Upstream, allowed: &[Method]) -> Option<(u8, Method)> {
    let mut levels = upstream.levels();
    levels.sort_by_key(|(level, _)| *level);
    levels
        .into_iter()
        .find(|(_, m)| allowed.is_empty() || allowed.iter().any(|a| m.satisfies(a)))
}
