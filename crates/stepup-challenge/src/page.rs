//! The challenge page, shared by the adapters: an askama template with
//! auto-escaping, plain forms that work without JavaScript, a served
//! stylesheet (no inline script or style, so a strict CSP holds).

use std::sync::Arc;

use askama::Template;
use stepup_core::ReturnTo;

use crate::code::Channel;
use crate::engine::{Approval, ApprovalShown};
use crate::i18n::{Catalogue, Lang, Text};

/// The language of a page and the catalogue its texts come from.
#[derive(Debug, Clone)]
struct Words {
    lang: Lang,
    catalogue: Arc<Catalogue>,
}

impl Words {
    fn english() -> Words {
        Words {
            lang: Lang::EN,
            catalogue: Catalogue::built_in(),
        }
    }

    /// A text (by value or, in a template's loop, by reference).
    fn t(&self, text: impl std::borrow::Borrow<Text>) -> &str {
        self.catalogue.get(self.lang, *text.borrow())
    }

    /// A text with its one placeholder `name` filled.
    fn tf(&self, text: Text, name: &str, value: impl std::fmt::Display) -> String {
        self.catalogue.format(self.lang, text, &[(name, &value)])
    }
}

/// The page's stylesheet, served by the adapters at `<base>/assets/page.css`.
pub const PAGE_CSS: &str = include_str!("../templates/page.css");

/// The passkey script, served by the adapters at `<base>/assets/passkey.js`:
/// feature-detects WebAuthn (the button stays hidden without it), converts
/// base64url, talks to `<base>/passkey/start|finish` (or the enrollment
/// routes), shows errors and leaves the other methods in place.
pub const PASSKEY_JS: &str = include_str!("../templates/passkey.js");

/// The page could not be rendered (a template error): the routes answer
/// `503 unavailable`, as for a store that cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the page template failed: {0}")]
pub struct TemplateError(String);

/// A form of the challenge page, to focus after an error.
///
/// ```
/// use stepup_challenge::Form;
/// assert_eq!(Form::RecoveryCode.name(), "recovery");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Form {
    /// The authenticator-app code.
    Totp,
    /// The password.
    Password,
    /// A recovery code.
    RecoveryCode,
    /// An e-mail or SMS code that was sent.
    Code,
    /// A custom method's code or approval.
    Custom,
    /// A step-up at an identity provider.
    Upstream,
}

impl Form {
    /// Its name in the page (`totp`, `password`, `recovery`, `code`).
    pub fn name(self) -> &'static str {
        match self {
            Form::Totp => "totp",
            Form::Password => "password",
            Form::RecoveryCode => "recovery",
            Form::Code => "code",
            Form::Custom => "custom",
            Form::Upstream => "upstream",
        }
    }
}

/// What the challenge page shows. Every text is HTML-escaped when rendered.
#[derive(Template, Debug, Clone)]
#[template(path = "page.html")]
pub struct ChallengePage {
    words: Words,
    title: String,
    message: String,
    detail: Option<String>,
    error: Option<String>,
    focus: &'static str,
    focus_form: Option<Form>,
    base: String,
    return_to: String,
    digits: u8,
    totp: bool,
    password: bool,
    recovery: bool,
    passkey: bool,
    any_method: bool,
    code_channels: Vec<CodeChannel>,
    pending_code: Option<PendingCode>,
    /// The application's own methods the page offers.
    custom: Vec<CustomEntry>,
    /// The identity providers the page offers (name, title).
    upstreams: Vec<(String, String)>,
    /// An approval started before the method was offered (applied when
    /// it is).
    waiting_for: Option<(String, String, u8)>,
    why: Option<String>,
    action: Option<String>,
    /// The bound action's ceremony id, carried through every form.
    confirmation: Option<String>,
    /// What the bound action does, from its server-side record.
    confirms: Option<String>,
    resubmit: bool,
    back: String,
}

/// A custom method on the page: a code form, or an approval to start (and,
/// once started, to wait for).
#[derive(Debug, Clone)]
struct CustomEntry {
    /// The method's bare name (in the routes' paths).
    name: String,
    /// Its heading.
    title: String,
    /// A code (its longest length), or an approval.
    code: Option<u8>,
    /// The approval being waited for, if one was started: its id and the
    /// number to type on the other device.
    waiting: Option<(String, u8)>,
}

/// A channel the page offers to send a code on.
#[derive(Debug, Clone)]
struct CodeChannel {
    name: &'static str,
    button: Text,
}

/// A code that was sent and is awaited.
#[derive(Debug, Clone)]
struct PendingCode {
    channel: &'static str,
    challenge_id: String,
    hint: String,
}

impl ChallengePage {
    /// A page under the challenge routes mounted at `base`, returning to
    /// `return_to` afterwards, saying `message` (the route's reason).
    pub fn new(base: &str, return_to: &ReturnTo, message: impl Into<String>) -> ChallengePage {
        let words = Words::english();
        ChallengePage {
            title: words.t(Text::ChallengeTitle).to_owned(),
            words,
            message: message.into(),
            detail: None,
            error: None,
            focus: "",
            focus_form: None,
            base: base.trim_end_matches('/').to_owned(),
            return_to: return_to.as_str().to_owned(),
            digits: 6,
            totp: false,
            password: false,
            recovery: false,
            passkey: false,
            any_method: false,
            code_channels: Vec::new(),
            pending_code: None,
            custom: Vec::new(),
            upstreams: Vec::new(),
            waiting_for: None,
            why: None,
            action: None,
            confirmation: None,
            confirms: None,
            resubmit: false,
            back: return_to.as_str().to_owned(),
        }
    }

    /// Says what happens after the step-up ("Continue: Send 25 to bob", a
    /// kept form's action) and links "go back" to `back`, the page the
    /// form was on.
    pub fn continues(mut self, action: impl Into<String>, back: &ReturnTo) -> Self {
        self.action = Some(action.into());
        self.back = back.as_str().to_owned();
        self
    }

    /// Makes the page's step-up one for the bound action whose ceremony
    /// is `id` and which does `summary` (from the server-side record):
    /// the page says "Confirm: Send 12,000.00 to bob", and every form (and
    /// the passkey button) carries the ceremony id, so the step-up becomes
    /// that action's single-use grant. `id` must be 32 lower-case hex
    /// digits; anything else is ignored.
    pub fn confirming(mut self, id: &str, summary: impl Into<String>) -> Self {
        if stepup_http::is_random_id(id) {
            self.confirmation = Some(id.to_owned());
            self.confirms = Some(summary.into());
        }
        self
    }

    /// The bound action the page confirms: its ceremony id and summary.
    pub fn confirmation(&self) -> Option<(&str, &str)> {
        Some((self.confirmation.as_deref()?, self.confirms.as_deref()?))
    }

    /// Says the interrupted form was not kept: submit it again after
    /// confirming.
    pub fn resubmit(mut self) -> Self {
        self.resubmit = true;
        self
    }

    /// What happens after the step-up, if the page says it.
    pub fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }

    /// Whether the page asks to submit the form again afterwards.
    pub fn asks_to_resubmit(&self) -> bool {
        self.resubmit
    }

    /// Carries the identifier of the route's reason (`why=…`) through the
    /// page's forms, so a page shown again after an error offers the same
    /// methods.
    pub fn why(mut self, id: &str) -> Self {
        if !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            self.why = Some(id.to_owned());
        }
        self
    }

    /// Offers to send a code on `channel`.
    pub fn with_code_channel(mut self, channel: Channel) -> Self {
        let button = match channel {
            Channel::Email => Text::SendCodeEmail,
            Channel::Sms => Text::SendCodeSms,
        };
        self.code_channels.push(CodeChannel {
            name: channel.as_str(),
            button,
        });
        self.any_method = true;
        self
    }

    /// Shows the form for a code that was just sent.
    pub fn awaiting_code(mut self, channel: Channel, challenge_id: &str, hint: &str) -> Self {
        self.pending_code = Some(PendingCode {
            channel: channel.as_str(),
            challenge_id: challenge_id.to_owned(),
            hint: hint.to_owned(),
        });
        self
    }

    /// A second sentence (why the previous confirmation no longer counts).
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// An error to show above the forms, and which form to focus.
    pub fn error(mut self, error: impl Into<String>, form: Form) -> Self {
        self.error = Some(error.into());
        self.focus = form.name();
        self.focus_form = Some(form);
        self
    }

    /// Offers the application's own method `method` under `title`: a code
    /// form for codes of at most `code` characters, or (with `None`) a
    /// button that sends an approval to the user's other device.
    pub fn with_custom(
        mut self,
        method: stepup_core::Method,
        title: &str,
        code: Option<u8>,
    ) -> Self {
        if method.is_custom() && !self.custom.iter().any(|c| c.name == method.name()) {
            let waiting = self
                .waiting_for
                .as_ref()
                .filter(|(name, _, _)| name == method.name())
                .map(|(_, id, number)| (id.clone(), *number));
            self.custom.push(CustomEntry {
                name: method.name().to_owned(),
                title: title.to_owned(),
                code,
                waiting,
            });
            self.any_method = true;
        }
        self
    }

    /// Shows the approval `id` of `method` as sent, with the `number` to
    /// type on the other device: the page waits for it (the served script
    /// polls and continues once approved; without JavaScript, a button
    /// continues). `id` must be 32 lower-case hex digits and `number` two
    /// digits; anything else is ignored.
    pub fn awaiting_approval(mut self, method: stepup_core::Method, id: &str, number: u8) -> Self {
        if stepup_http::is_random_id(id) && (10..=99).contains(&number) {
            for entry in self.custom.iter_mut().filter(|c| c.name == method.name()) {
                entry.waiting = Some((id.to_owned(), number));
            }
            self.waiting_for = Some((method.name().to_owned(), id.to_owned(), number));
        }
        self
    }

    /// The application's own methods the page offers, for a page
    /// template of the application's own: each method's name (as in the
    /// routes' paths), its title, and its longest code (`None` for an
    /// approval: a start button, or the wait of
    /// [`waiting_for`](Self::waiting_for)).
    ///
    /// ```
    /// use stepup_challenge::ChallengePage;
    /// use stepup_core::{Method, ReturnTo};
    /// let page = ChallengePage::new("/step-up", &ReturnTo::root(), "Confirm it's you")
    ///     .with_custom(Method::custom("token")?, "Your hardware token", Some(8));
    /// let offered: Vec<_> = page.custom_methods().collect();
    /// assert_eq!(offered, [("token", "Your hardware token", Some(8))]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn custom_methods(&self) -> impl Iterator<Item = (&str, &str, Option<u8>)> {
        self.custom
            .iter()
            .map(|c| (c.name.as_str(), c.title.as_str(), c.code))
    }

    /// Offers a step-up at the identity provider `name` (its routes'
    /// name, see [`Upstream`](crate::Upstream)) under `title`: a button
    /// that goes there.
    ///
    /// ```
    /// use stepup_challenge::ChallengePage;
    /// use stepup_core::ReturnTo;
    /// let page = ChallengePage::new("/step-up", &ReturnTo::root(), "Confirm it's you")
    ///     .with_upstream("acme", "Confirm at Acme ID");
    /// assert_eq!(page.upstreams().collect::<Vec<_>>(), [("acme", "Confirm at Acme ID")]);
    /// assert!(page.html()?.contains(r#"action="/step-up/upstream/acme/start""#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_upstream(mut self, name: &str, title: &str) -> Self {
        if crate::upstream::valid_name(name) && !self.upstreams.iter().any(|(n, _)| n == name) {
            self.upstreams.push((name.to_owned(), title.to_owned()));
            self.any_method = true;
        }
        self
    }

    /// The identity providers the page offers: name and title.
    pub fn upstreams(&self) -> impl Iterator<Item = (&str, &str)> {
        self.upstreams.iter().map(|(n, t)| (n.as_str(), t.as_str()))
    }

    /// The approval the page waits for: the method's name, the id and the
    /// number.
    pub fn waiting_for(&self) -> Option<(&str, &str, u8)> {
        self.waiting_for
            .as_ref()
            .map(|(m, id, number)| (m.as_str(), id.as_str(), *number))
    }

    /// Offers the TOTP form for codes of `digits` digits.
    pub fn with_totp(mut self, digits: u8) -> Self {
        self.totp = true;
        self.digits = digits;
        self.any_method = true;
        self
    }

    /// Offers "Use a passkey" (shown by the served script where WebAuthn works).
    pub fn with_passkey(mut self) -> Self {
        self.passkey = true;
        self.any_method = true;
        self
    }

    /// Whether the passkey button is offered.
    pub fn offers_passkey(&self) -> bool {
        self.passkey
    }

    /// Offers the password form.
    pub fn with_password(mut self) -> Self {
        self.password = true;
        self.any_method = true;
        self
    }

    /// Offers the recovery-code form.
    pub fn with_recovery_code(mut self) -> Self {
        self.recovery = true;
        self.any_method = true;
        self
    }

    /// The page in `lang`, its texts from `catalogue` (English and the
    /// built-in catalogue unless told). The sentences handed to the page
    /// ([`new`](ChallengePage::new)'s message, [`detail`](ChallengePage::detail),
    /// [`error`](ChallengePage::error)) are shown as given.
    ///
    /// ```
    /// use stepup_challenge::ChallengePage;
    /// use stepup_challenge::i18n::{Catalogue, Lang, Text};
    /// use stepup_core::ReturnTo;
    ///
    /// let page = ChallengePage::new("/step-up", &ReturnTo::root(), "Bitte bestätigen.")
    ///     .in_language(Catalogue::built_in(), Lang::DE)
    ///     .with_totp(8);
    /// assert_eq!(page.lang(), Lang::DE);
    /// assert_eq!(page.title(), "Bestätigen Sie, dass Sie es sind");
    /// assert_eq!(page.text(Text::Confirm), "Bestätigen");
    /// let html = page.html().unwrap();
    /// assert!(html.contains(r#"<html lang="de">"#));
    /// assert!(html.contains("Der 8-stellige Code"));
    /// ```
    #[must_use]
    pub fn in_language(mut self, catalogue: Arc<Catalogue>, lang: Lang) -> Self {
        self.words = Words { lang, catalogue };
        self.title = self.words.t(Text::ChallengeTitle).to_owned();
        self
    }

    /// The page's language (`<html lang>`).
    pub fn lang(&self) -> Lang {
        self.words.lang
    }

    /// One of the page's texts in its language, for an application's own
    /// template ([`PageRenderer`](crate::routes::PageRenderer)).
    pub fn text(&self, text: Text) -> &str {
        self.words.t(text)
    }

    /// The HTML.
    pub fn html(&self) -> Result<String, TemplateError> {
        self.render().map_err(|e| TemplateError(e.to_string()))
    }

    /// The page title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The sentence saying why (configured text).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The second sentence, if any.
    pub fn detail_text(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The error to show, if any, and the form it belongs to (none when the
    /// error is about no form in particular).
    pub fn error_text(&self) -> Option<(&str, Option<Form>)> {
        self.error.as_deref().map(|e| (e, self.focus_form))
    }

    /// Where the challenge routes are mounted (form actions are `<base>/totp` …).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The validated path to return to (also the forms' `return_to` field).
    pub fn return_to(&self) -> &str {
        &self.return_to
    }

    /// The TOTP form, if offered, with its number of digits.
    pub fn totp_digits(&self) -> Option<u8> {
        self.totp.then_some(self.digits)
    }

    /// Whether the password form is offered.
    pub fn offers_password(&self) -> bool {
        self.password
    }

    /// Whether the recovery-code form is offered.
    pub fn offers_recovery_code(&self) -> bool {
        self.recovery
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_forms_and_escapes_everything() {
        let back = ReturnTo::parse("/transfer?a=1&b=2").unwrap();
        let html = ChallengePage::new("/step-up", &back, "<script>alert('x')</script> & \"more\"")
            .detail("Your last confirmation is too old.")
            .error("that was not right; 4 attempts left", Form::Totp)
            .with_totp(6)
            .with_recovery_code()
            .html()
            .unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&#60;script&#62;alert(&#39;x&#39;)"),
            "{html}"
        );
        assert!(html.contains(r#"action="/step-up/totp""#));
        assert!(html.contains(r#"autocomplete="one-time-code""#));
        assert!(html.contains(r#"inputmode="numeric""#));
        assert!(html.contains("autofocus"));
        assert!(html.contains(r#"action="/step-up/recovery""#));
        assert!(!html.contains(r#"action="/step-up/password""#));
        assert!(html.contains("/transfer?a=1&#38;b=2"), "{html}");
        assert!(
            !html.contains("<style") && !html.contains("<script"),
            "no inline style or script"
        );
        assert!(html.contains("4 attempts left"));
    }

    #[test]
    fn says_so_when_nothing_is_enrolled() {
        let html = ChallengePage::new("/step-up", &ReturnTo::root(), "Confirm.")
            .html()
            .unwrap();
        assert!(html.contains("No way to confirm"));
    }
}

/// The confirmation page after a step-up: the kept form's fields as hidden
/// inputs plus the resume marker, posted to where the form was going, with
/// a button naming the action. No script.
#[derive(Template, Debug, Clone)]
#[template(path = "resume.html")]
pub struct ConfirmPage {
    words: Words,
    title: String,
    base: String,
    target: String,
    fields: Vec<(String, String)>,
    id: String,
    action: String,
    back: String,
}

impl ConfirmPage {
    /// The page under the routes mounted at `base` for the kept form `id`,
    /// posting `fields` to `target`; the button says `action`.
    pub fn new(
        base: &str,
        id: &str,
        target: &str,
        fields: Vec<(String, String)>,
        action: &str,
        back: &ReturnTo,
    ) -> ConfirmPage {
        let words = Words::english();
        ConfirmPage {
            title: words.t(Text::ResumeTitle).to_owned(),
            words,
            base: base.trim_end_matches('/').to_owned(),
            target: target.to_owned(),
            fields,
            id: id.to_owned(),
            action: action.to_owned(),
            back: back.as_str().to_owned(),
        }
    }

    /// The page in `lang`, its texts from `catalogue`.
    ///
    /// ```
    /// use stepup_challenge::ConfirmPage;
    /// use stepup_challenge::i18n::{Catalogue, Lang};
    /// use stepup_core::ReturnTo;
    ///
    /// let page = ConfirmPage::new("/step-up", "0123", "/pay", vec![], "Pay", &ReturnTo::root())
    ///     .in_language(Catalogue::built_in(), Lang::DE);
    /// let html = page.html().unwrap();
    /// assert!(html.contains(r#"lang="de""#) && html.contains("Prüfen und fortfahren"));
    /// ```
    #[must_use]
    pub fn in_language(mut self, catalogue: Arc<Catalogue>, lang: Lang) -> Self {
        self.words = Words { lang, catalogue };
        self.title = self.words.t(Text::ResumeTitle).to_owned();
        self
    }

    /// The page's language (`<html lang>`).
    pub fn lang(&self) -> Lang {
        self.words.lang
    }

    /// The HTML.
    pub fn html(&self) -> Result<String, TemplateError> {
        self.render().map_err(|e| TemplateError(e.to_string()))
    }
}

/// The approve page an approve link opens on the user's other device:
/// what is approved and one button (a `GET` approves nothing), then
/// "approved" or "expired or used".
#[derive(Template, Debug, Clone)]
#[template(path = "approve.html")]
pub struct ApprovePage {
    words: Words,
    title: String,
    base: String,
    action_path: String,
    secret: Option<String>,
    action: Option<String>,
    /// Where the request came from: the browser family and the network.
    from: Option<(String, Option<String>)>,
    answer: Answer,
}

/// What the approve page says after its button.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// Not answered yet (or the link is gone).
    None,
    Approved,
    WrongNumber,
}

impl ApprovePage {
    /// The question for the approve link `secret` of the method `name`
    /// (under the routes mounted at `base`): what `shown` says — the
    /// title, the bound action if any, where it was asked from — and a
    /// field for the number the browser that asked shows.
    pub fn asking(base: &str, name: &str, secret: &str, shown: ApprovalShown) -> ApprovePage {
        let base = base.trim_end_matches('/').to_owned();
        ApprovePage {
            words: Words::english(),
            title: shown.title,
            action_path: format!("{base}/custom/{name}/approve"),
            base,
            secret: Some(secret.to_owned()),
            action: shown.action,
            from: Some((shown.browser, shown.network)),
            answer: Answer::None,
        }
    }

    /// The answer after the button: approved, voided for a wrong
    /// number, or the link was gone.
    pub fn answered(base: &str, title: &str, approval: Approval) -> ApprovePage {
        ApprovePage {
            words: Words::english(),
            title: title.to_owned(),
            base: base.trim_end_matches('/').to_owned(),
            action_path: String::new(),
            secret: None,
            action: None,
            from: None,
            answer: match approval {
                Approval::Approved => Answer::Approved,
                Approval::WrongNumber => Answer::WrongNumber,
                _ => Answer::None,
            },
        }
    }

    /// The page in `lang` from `catalogue`.
    #[must_use]
    pub fn in_language(mut self, catalogue: Arc<Catalogue>, lang: Lang) -> Self {
        self.words = Words { lang, catalogue };
        self
    }

    /// "Asked from Firefox on 198.51.100.0/24", in the page's language.
    fn asked_from(&self) -> Option<String> {
        let (family, network) = self.from.as_ref()?;
        let browser = match family.as_str() {
            "chrome" => "Chrome",
            "firefox" => "Firefox",
            "safari" => "Safari",
            "edge" => "Edge",
            "opera" => "Opera",
            "samsung" => "Samsung Internet",
            "none" => self.words.t(Text::UnknownBrowser),
            _ => self.words.t(Text::OtherBrowser),
        };
        let network = network
            .as_deref()
            .unwrap_or_else(|| self.words.t(Text::UnknownNetwork));
        Some(self.words.catalogue.format(
            self.words.lang,
            Text::ApproveAskedFrom,
            &[("browser", &browser), ("network", &network)],
        ))
    }

    /// The HTML.
    pub fn html(&self) -> Result<String, TemplateError> {
        self.render().map_err(|e| TemplateError(e.to_string()))
    }
}

/// The approval script, served at `<base>/assets/approval.js`: polls a
/// started approval's status and continues once it is approved.
pub const APPROVAL_JS: &str = include_str!("../templates/approval.js");

/// A page with one sentence and one link: a form already submitted,
/// expired, or changed.
#[derive(Template, Debug, Clone)]
#[template(path = "notice.html")]
pub struct NoticePage {
    words: Words,
    title: String,
    base: String,
    message: String,
    link: String,
    link_text: String,
}

impl NoticePage {
    /// The page under the routes mounted at `base`.
    pub fn new(
        base: &str,
        title: &str,
        message: &str,
        link: &ReturnTo,
        link_text: &str,
    ) -> NoticePage {
        NoticePage {
            words: Words::english(),
            title: title.to_owned(),
            base: base.trim_end_matches('/').to_owned(),
            message: message.to_owned(),
            link: link.as_str().to_owned(),
            link_text: link_text.to_owned(),
        }
    }

    /// The page's `<html lang>`: the language its texts are in.
    ///
    /// ```
    /// use stepup_challenge::NoticePage;
    /// use stepup_challenge::i18n::Lang;
    /// use stepup_core::ReturnTo;
    ///
    /// let page = NoticePage::new("/step-up", "Zurück", "Nichts.", &ReturnTo::root(), "Zurück")
    ///     .in_language(Lang::DE);
    /// assert!(page.html().unwrap().contains(r#"lang="de""#));
    /// ```
    #[must_use]
    pub fn in_language(mut self, lang: Lang) -> Self {
        self.words.lang = lang;
        self
    }

    /// The page's language (`<html lang>`).
    pub fn lang(&self) -> Lang {
        self.words.lang
    }

    /// The HTML.
    pub fn html(&self) -> Result<String, TemplateError> {
        self.render().map_err(|e| TemplateError(e.to_string()))
    }
}

/// The enrollment page: set up an authenticator app (QR code and manual key,
/// then a confirming code) or show fresh recovery codes once.
#[derive(Template, Debug, Clone)]
#[template(path = "enroll.html")]
pub struct EnrollPage {
    words: Words,
    digits: u8,
    title: String,
    base: String,
    back: String,
    error: Option<String>,
    done: Option<String>,
    start: bool,
    passkey: bool,
    qr_data_url: Option<String>,
    manual_key: Option<String>,
    codes: Vec<String>,
}

impl EnrollPage {
    /// An enrollment page under the routes mounted at `base`, linking back to `back`.
    pub fn new(base: &str, back: &ReturnTo) -> EnrollPage {
        let words = Words::english();
        EnrollPage {
            title: words.t(Text::EnrollTitle).to_owned(),
            words,
            digits: 6,
            base: base.trim_end_matches('/').to_owned(),
            back: back.as_str().to_owned(),
            error: None,
            done: None,
            start: false,
            passkey: false,
            qr_data_url: None,
            manual_key: None,
            codes: Vec::new(),
        }
    }

    /// The page in `lang`, its texts from `catalogue`.
    ///
    /// ```
    /// use stepup_challenge::EnrollPage;
    /// use stepup_challenge::i18n::{Catalogue, Lang};
    /// use stepup_core::ReturnTo;
    ///
    /// let html = EnrollPage::new("/step-up", &ReturnTo::root())
    ///     .in_language(Catalogue::built_in(), Lang::DE)
    ///     .digits(8)
    ///     .start()
    ///     .html()
    ///     .unwrap();
    /// assert!(html.contains(r#"lang="de""#) && html.contains("8-stelligen Code"));
    /// ```
    #[must_use]
    pub fn in_language(mut self, catalogue: Arc<Catalogue>, lang: Lang) -> Self {
        self.words = Words { lang, catalogue };
        self.title = self.words.t(Text::EnrollTitle).to_owned();
        self
    }

    /// The length of the authenticator app's codes the page mentions (6
    /// unless told).
    #[must_use]
    pub fn digits(mut self, digits: u8) -> Self {
        self.digits = digits;
        self
    }

    /// Offers to start an authenticator-app enrollment.
    pub fn start(mut self) -> Self {
        self.start = true;
        self
    }

    /// Offers to create a passkey (with the served script).
    pub fn offer_passkey(mut self) -> Self {
        self.passkey = true;
        self
    }

    /// Shows the QR code (a `data:image/png;base64,…` URL) and the manual key,
    /// with the confirmation form.
    pub fn scan(mut self, qr_data_url: String, manual_key: String) -> Self {
        self.qr_data_url = Some(qr_data_url);
        self.manual_key = Some(manual_key);
        self
    }

    /// Shows recovery codes, once.
    pub fn codes(mut self, codes: Vec<String>) -> Self {
        self.codes = codes;
        self
    }

    /// A success message.
    pub fn done(mut self, message: impl Into<String>) -> Self {
        self.done = Some(message.into());
        self
    }

    /// An error message.
    pub fn error(mut self, message: impl Into<String>) -> Self {
        self.error = Some(message.into());
        self
    }

    /// The page's language (`<html lang>`).
    pub fn lang(&self) -> Lang {
        self.words.lang
    }

    /// The HTML.
    pub fn html(&self) -> Result<String, TemplateError> {
        self.render().map_err(|e| TemplateError(e.to_string()))
    }
}
