//! Forms kept across a step-up, on the web: [`KeptForms`] (the
//! [`Resume`] store every guard of the application uses), the confirmation
//! page (`GET <mount>/resume?pending=<id>`) and the pages a form that
//! comes back again, expired or changed gets.

use stepup_http::{Arrival, BoxFuture, Interrupted, Resume, Resumed, Stashed};

use super::*;
use crate::engine::{Again, Came};
use crate::{ConfirmPage, FormLimits, NoticePage};

/// The [`Resume`] store of an application: keeps interrupted forms in the
/// engine's state store (sealed, bound to the sender's subject and
/// session, under 128-bit ids, within [`FormLimits`]) and takes each back
/// at most once — across instances too, on a shared store. The adapters'
/// `StepUp` sets it up; give it to
/// [`Settings::with_resume`](stepup_http::Settings::with_resume) when
/// wiring by hand.
pub struct KeptForms<F, S, P> {
    engine: Arc<Engine<F, S, P>>,
    limits: FormLimits,
    notices: Notices,
}

impl<F, S, P> fmt::Debug for KeptForms<F, S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeptForms")
            .field("limits", &self.limits)
            .field("base", &self.notices.base)
            .finish_non_exhaustive()
    }
}

/// The pages a kept form that comes back again, expired or changed gets,
/// under the routes' mount path.
/// In English: the guard that serves them reads no `Accept-Language`;
/// the confirmation route's are in the request's language.
struct Notices {
    base: String,
    fallback: ReturnTo,
    catalogue: Arc<Catalogue>,
    lang: Lang,
}

impl Notices {
    fn of(settings: &Settings) -> Notices {
        Notices {
            base: settings.page().as_str().trim_end_matches('/').to_owned(),
            fallback: settings.fallback().clone(),
            catalogue: Catalogue::built_in(),
            lang: Lang::EN,
        }
    }

    fn in_language(mut self, catalogue: Arc<Catalogue>, lang: Lang) -> Notices {
        self.catalogue = catalogue;
        self.lang = lang;
        self
    }

    fn page(&self, status: u16, texts: [Text; 3], link: &ReturnTo) -> Reply {
        let t = |text| self.catalogue.get(self.lang, text);
        let [title, message, link_text] = texts;
        let page = NoticePage::new(&self.base, t(title), t(message), link, t(link_text))
            .in_language(self.lang);
        match page.html() {
            Ok(html) => html_reply(status, html, self.lang),
            Err(_) => unavailable_because("template"),
        }
    }

    /// `409`: this form was sent already.
    fn already_sent(&self, went: Option<ReturnTo>, back: ReturnTo) -> Reply {
        let (link, text) = match went {
            Some(went) => (went, Text::SeeFirstSubmission),
            None => (back, Text::GoBack),
        };
        self.page(
            409,
            [Text::AlreadySubmittedTitle, Text::AlreadySubmitted, text],
            &link,
        )
    }

    /// `409`: nothing is kept under this id for this session.
    fn expired(&self) -> Reply {
        self.page(
            409,
            [
                Text::NothingToContinueTitle,
                Text::NothingToContinue,
                Text::GoBack,
            ],
            &self.fallback,
        )
    }

    /// `400`: not the form that was confirmed.
    fn changed(&self, back: &ReturnTo) -> Reply {
        self.page(
            400,
            [Text::FormChangedTitle, Text::FormChanged, Text::GoBack],
            back,
        )
    }
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> KeptForms<F, S, P> {
    /// Forms kept by `engine` within `limits`, for the routes `settings`
    /// mounts (its pages link there).
    pub fn new(engine: Arc<Engine<F, S, P>>, settings: &Settings, limits: FormLimits) -> Self {
        KeptForms {
            engine,
            limits,
            notices: Notices::of(settings),
        }
    }

    /// `settings` keeping interrupted forms with `engine` within `limits`
    /// (replacing any store set before): what the adapters' `StepUp` does
    /// whenever its settings change.
    pub fn attach(settings: Settings, engine: &Arc<Engine<F, S, P>>, limits: FormLimits) -> Settings
    where
        F: 'static,
        S: 'static,
        P: 'static,
    {
        let forms = KeptForms::new(engine.clone(), &settings, limits);
        settings.with_resume(Arc::new(forms))
    }
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Resume for KeptForms<F, S, P> {
    fn limit(&self) -> usize {
        self.limits.max_body_bytes()
    }

    fn stash<'a>(&'a self, form: Interrupted<'a>) -> BoxFuture<'a, Stashed> {
        Box::pin(self.engine.keep_form(&self.limits, form))
    }

    fn arrive<'a>(&'a self, arrival: Arrival<'a>) -> BoxFuture<'a, Result<Resumed, Reply>> {
        Box::pin(async move {
            match self.engine.form_came_back(&self.limits, arrival).await {
                Ok(Came::Resumed(resumed)) => Ok(resumed),
                Ok(Came::AlreadySent { went, back }) => Err(self.notices.already_sent(went, back)),
                Ok(Came::Expired) => Err(self.notices.expired()),
                Ok(Came::Changed { back }) => Err(self.notices.changed(&back)),
                Err(e) => Err(unavailable(&ChallengeError::Store(e))),
            }
        })
    }

    fn went<'a>(&'a self, id: &'a str, location: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = self.engine.form_went(&self.limits, id, location).await {
                tracing::warn!(target: "stepup", error = %e, "where a resumed form went was not noted");
            }
        })
    }

    fn again<'a>(&'a self, subject: &'a Subject, id: &'a str) -> BoxFuture<'a, stepup_http::Again> {
        Box::pin(async move {
            match self.engine.form_again(subject, id).await {
                Ok(Again::Sent { went, back }) => {
                    stepup_http::Again::Sent(self.notices.already_sent(went, back))
                }
                Ok(Again::Waiting) => stepup_http::Again::Waiting,
                // A confirmation page whose form is gone (taken, expired, or
                // its done record expired too): never kept anew, which could
                // run it a second time.
                Ok(Again::Unknown) => stepup_http::Again::Sent(self.notices.expired()),
                Err(e) => stepup_http::Again::Sent(unavailable(&ChallengeError::Store(e))),
            }
        })
    }
}

#[derive(Deserialize, Default)]
struct ResumeQuery {
    pending: Option<String>,
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> ChallengeRoutes<F, S, P> {
    /// `GET /resume?pending=<id>`: the confirmation page of a kept form.
    pub(super) async fn confirm_page(&self, request: &Incoming<'_>) -> Reply {
        let Some(subject) = &request.subject else {
            return Reply::login_required();
        };
        let query: ResumeQuery = parse_query(request.query);
        let id = query.pending.unwrap_or_default();
        let base = self.settings.page().as_str();
        let kept = match self.engine.kept_form(subject, &id).await {
            Ok(kept) => kept,
            Err(e) => return unavailable(&ChallengeError::Store(e)),
        };
        let Some(kept) = kept else {
            let forms = Notices::of(&self.settings)
                .in_language(self.catalogue.clone(), self.language(request));
            return match self.engine.form_sent(subject, &id).await {
                Ok(Some((went, back))) => forms.already_sent(went, back),
                Ok(None) => forms.expired(),
                Err(e) => unavailable(&ChallengeError::Store(e)),
            };
        };
        let page = ConfirmPage::new(
            base,
            kept.id(),
            kept.target(),
            kept.fields().pairs().to_vec(),
            &kept.action(),
            kept.back(),
        )
        .in_language(self.catalogue.clone(), self.language(request));
        match page.html() {
            Ok(html) => html_reply(200, html, page.lang()),
            Err(_) => unavailable_because("template"),
        }
    }

    /// The kept form a challenge page returns to (its `return_to` is the
    /// confirmation page), for the page to say what happens next.
    pub(super) async fn continuing(
        &self,
        subject: &Subject,
        return_to: &ReturnTo,
    ) -> Option<KeptForm> {
        let id = self.settings.target().pending_in(return_to)?;
        self.engine.kept_form(subject, id).await.ok().flatten()
    }
}
