//! The page in the user's language: a message [`Catalogue`] of every text
//! the challenge, enrollment and confirmation pages, the passkey script,
//! the page's error sentences and the e-mail/SMS code message show, keyed
//! by [`Text`]; language tags ([`Lang`]); and the choice of language from
//! `Accept-Language` ([`negotiate`]).
//!
//! English and German ship complete. An application adds a language or
//! replaces single texts with [`Catalogue::insert`]; a text missing in an
//! added language is shown in English, per text. Numbers in texts come
//! from the configuration through placeholders (`{digits}`, `{minutes}`,
//! …), filled by [`Catalogue::format`].
//!
//! ```
//! use stepup_challenge::i18n::{Catalogue, Lang, Text};
//!
//! let mut catalogue = Catalogue::new();
//! let fr = Lang::parse("fr").unwrap();
//! catalogue.insert(fr, Text::ChallengeTitle, "Confirmez qu'il s'agit bien de vous");
//!
//! let lang = catalogue.negotiate(Some(b"fr-CA, de;q=0.8"));
//! assert_eq!(lang, fr);
//! assert_eq!(catalogue.get(lang, Text::ChallengeTitle), "Confirmez qu'il s'agit bien de vous");
//! // Not translated: English, for this text only.
//! assert_eq!(catalogue.get(lang, Text::Confirm), "Confirm");
//! assert_eq!(
//!     catalogue.format(Lang::DE, Text::TotpLabel, &[("digits", &8)]),
//!     "Der 8-stellige Code aus Ihrer Authenticator-App"
//! );
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, LazyLock};

/// A language: the primary subtag of a BCP 47 language tag (`de` for
/// `de-AT`), 2 to 8 ASCII letters, kept in lower case. `Copy`, no
/// allocation.
///
/// ```
/// use stepup_challenge::i18n::Lang;
/// assert_eq!(Lang::parse("de-AT"), Some(Lang::DE));
/// assert_eq!(Lang::parse("EN"), Some(Lang::EN));
/// assert_eq!(Lang::parse("x"), None);
/// assert_eq!(Lang::DE.as_str(), "de");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lang {
    bytes: [u8; 8],
    len: u8,
}

impl Lang {
    /// English, the language every text falls back to.
    pub const EN: Lang = Lang {
        bytes: *b"en\0\0\0\0\0\0",
        len: 2,
    };
    /// German.
    pub const DE: Lang = Lang {
        bytes: *b"de\0\0\0\0\0\0",
        len: 2,
    };

    /// The language of a tag such as `de`, `de-CH` or `pt_BR`: its primary
    /// subtag in lower case, or `None` when that is not 2 to 8 ASCII
    /// letters.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.split(['-', '_']).next().unwrap_or("").trim();
        let len = primary.len();
        if !(2..=8).contains(&len) || !primary.bytes().all(|b| b.is_ascii_alphabetic()) {
            return None;
        }
        let mut bytes = [0u8; 8];
        for (slot, b) in bytes.iter_mut().zip(primary.bytes()) {
            *slot = b.to_ascii_lowercase();
        }
        Some(Lang {
            bytes,
            len: len as u8,
        })
    }

    /// The tag, in lower case (`en`, `de`, …): what `<html lang>` and
    /// `Content-Language` say.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("en")
    }
}

impl Default for Lang {
    /// English.
    fn default() -> Lang {
        Lang::EN
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lang({})", self.as_str())
    }
}

macro_rules! texts {
    ($( $(#[$doc:meta])* $name:ident = $key:literal, en: $en:literal, de: $de:literal; )*) => {
        /// One text of the pages, the passkey script, the error sentences
        /// or the code message. Placeholders in braces (`{digits}`) are
        /// filled by [`Catalogue::format`]; each variant's documentation
        /// shows its English text.
        ///
        /// ```
        /// use stepup_challenge::i18n::Text;
        /// assert_eq!(Text::Confirm.key(), "confirm");
        /// assert!(Text::ALL.contains(&Text::TotpLabel));
        /// ```
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Text {
            $( $(#[$doc])* #[doc = ""] #[doc = concat!("English: “", $en, "”")] $name, )*
        }

        impl Text {
            /// Every text.
            pub const ALL: &'static [Text] = &[$(Text::$name),*];

            /// A stable key (`totp.label`): for an application's own
            /// translation files.
            pub fn key(self) -> &'static str {
                match self { $(Text::$name => $key,)* }
            }

            /// The text whose [`key`](Text::key) is `key`.
            ///
            /// ```
            /// use stepup_challenge::i18n::Text;
            /// assert_eq!(Text::from_key("confirm"), Some(Text::Confirm));
            /// ```
            pub fn from_key(key: &str) -> Option<Text> {
                match key { $($key => Some(Text::$name),)* _ => None }
            }

            fn english(self) -> &'static str {
                match self { $(Text::$name => $en,)* }
            }

            fn german(self) -> &'static str {
                match self { $(Text::$name => $de,)* }
            }
        }
    };
}

texts! {
    /// The challenge page's title.
    ChallengeTitle = "challenge.title",
        en: "Confirm it's you",
        de: "Bestätigen Sie, dass Sie es sind";
    /// Why the page asks, when the route registered no reason of its own.
    GenericReason = "challenge.generic_reason",
        en: "We need to confirm it's really you before you continue.",
        de: "Bevor Sie fortfahren, müssen wir bestätigen, dass wirklich Sie es sind.";
    /// Why a change of factors asks.
    ChangeReason = "challenge.change_reason",
        en: "Confirm it's you before changing how you sign in.",
        de: "Bestätigen Sie Ihre Identität, bevor Sie ändern, wie Sie sich anmelden.";
    /// Why an account recovery asks.
    RecoveryReason = "challenge.recovery_reason",
        en: "Confirm it's you to start an account recovery.",
        de: "Bestätigen Sie Ihre Identität, um eine Kontowiederherstellung zu starten.";
    /// The bound action the page confirms (`{action}`).
    ConfirmsAction = "challenge.confirms",
        en: "Confirm: {action}",
        de: "Bestätigen: {action}";
    /// Under a bound action.
    ConfirmsOnlyThis = "challenge.confirms_only_this",
        en: "This confirmation is for this exact action only.",
        de: "Diese Bestätigung gilt nur für genau diese Aktion.";
    /// The kept form that follows (`{action}`).
    ContinuesAction = "challenge.continues",
        en: "Continue: {action}",
        de: "Weiter: {action}";
    /// Under a kept form.
    CheckAgainAfter = "challenge.check_again",
        en: "After you confirm, you can check it once more before it goes ahead.",
        de: "Nach der Bestätigung können Sie alles noch einmal prüfen, bevor es ausgeführt wird.";
    /// The interrupted form was not kept.
    Resubmit = "challenge.resubmit",
        en: "Your form could not be kept: after confirming, submit it again.",
        de: "Ihr Formular konnte nicht aufbewahrt werden: Senden Sie es nach der Bestätigung bitte erneut ab.";
    /// Nothing is enrolled.
    NoMethod = "challenge.no_method",
        en: "No way to confirm it's you is set up for this account yet.",
        de: "Für dieses Konto ist noch keine Möglichkeit eingerichtet, Ihre Identität zu bestätigen.";
    /// The passkey section's heading.
    PasskeyHeading = "passkey.heading",
        en: "Passkey",
        de: "Passkey";
    /// The passkey button.
    PasskeyUse = "passkey.use",
        en: "Use a passkey",
        de: "Passkey verwenden";
    /// Without JavaScript, on the challenge page.
    PasskeyNoScript = "passkey.no_script",
        en: "Passkeys need JavaScript; use another way below.",
        de: "Passkeys benötigen JavaScript; nutzen Sie bitte eine andere Möglichkeit weiter unten.";
    /// The passkey script, after a failure, where the page offers other ways.
    PasskeyFailedOthers = "passkey.failed_others",
        en: "That did not work. Try again, or use another way below.",
        de: "Das hat nicht funktioniert. Versuchen Sie es erneut oder nutzen Sie eine andere Möglichkeit weiter unten.";
    /// The passkey script, after a failure, where the page offers no other way.
    PasskeyFailed = "passkey.failed",
        en: "That did not work. Please try again.",
        de: "Das hat nicht funktioniert. Bitte versuchen Sie es erneut.";
    /// The name a new passkey is registered under.
    PasskeyName = "passkey.name",
        en: "Passkey",
        de: "Passkey";
    /// The authenticator-app section's heading.
    TotpHeading = "totp.heading",
        en: "Authenticator app",
        de: "Authenticator-App";
    /// The TOTP field's label (`{digits}`: the configured code length).
    TotpLabel = "totp.label",
        en: "The {digits}-digit code from your authenticator app",
        de: "Der {digits}-stellige Code aus Ihrer Authenticator-App";
    /// Every form's button.
    Confirm = "confirm",
        en: "Confirm",
        de: "Bestätigen";
    /// The password section's heading.
    PasswordHeading = "password.heading",
        en: "Password",
        de: "Passwort";
    /// The password field's label.
    PasswordLabel = "password.label",
        en: "Your password",
        de: "Ihr Passwort";
    /// The sent code's heading (`{hint}`: the masked address).
    CodeSentHeading = "code.sent_heading",
        en: "Code sent to {hint}",
        de: "Code gesendet an {hint}";
    /// The sent code's label.
    CodeSentLabel = "code.sent_label",
        en: "The code we sent you",
        de: "Der Code, den wir Ihnen gesendet haben";
    /// The hint after a wrong code, instead of the masked address.
    RegisteredAddress = "code.registered_address",
        en: "your registered address",
        de: "Ihre hinterlegte Adresse";
    /// The button sending a code by e-mail.
    SendCodeEmail = "code.send_email",
        en: "Send me a code by e-mail",
        de: "Code per E-Mail senden";
    /// The button sending a code by SMS.
    SendCodeSms = "code.send_sms",
        en: "Send me a code by text message",
        de: "Code per SMS senden";
    /// The recovery-code section's heading.
    RecoveryHeading = "recovery.heading",
        en: "Recovery code",
        de: "Wiederherstellungscode";
    /// The recovery-code field's label.
    RecoveryLabel = "recovery.label",
        en: "One of your recovery codes (each works once)",
        de: "Einer Ihrer Wiederherstellungscodes (jeder funktioniert nur einmal)";
    /// The challenge page's way out.
    GoBackWithoutConfirming = "challenge.go_back",
        en: "Go back without confirming",
        de: "Zurück, ohne zu bestätigen";
    /// The approval was not given yet.
    ErrorApprovalPending = "error.approval_pending",
        en: "Not approved yet: approve on your other device, then continue.",
        de: "Noch nicht bestätigt: Bestätigen Sie auf Ihrem anderen Gerät und fahren Sie dann fort.";
    /// The label of a custom method's code field.
    CustomCodeLabel = "custom.code_label",
        en: "The code",
        de: "Der Code";
    /// The button that sends an approval request to the other device.
    ApprovalStart = "approval.start",
        en: "Send a request to my other device",
        de: "Anfrage an mein anderes Gerät senden";
    /// The page while it waits for the approval.
    ApprovalWaiting = "approval.waiting",
        en: "We sent a request to your other device. Approve it there: this page continues by itself.",
        de: "Wir haben eine Anfrage an Ihr anderes Gerät gesendet. Bestätigen Sie sie dort: Diese Seite geht dann von selbst weiter.";
    /// The button that continues once approved (without JavaScript).
    ApprovalContinue = "approval.continue",
        en: "I approved it — continue",
        de: "Ich habe bestätigt – weiter";
    /// The approval expired or was replaced.
    ApprovalGone = "approval.gone",
        en: "This request has expired. Send a new one.",
        de: "Diese Anfrage ist abgelaufen. Senden Sie eine neue.";
    /// The approval was refused on the other device (a wrong number).
    ApprovalRefused = "approval.refused",
        en: "The request was refused on your other device: the number did not match. If that was you, send a new one.",
        de: "Die Anfrage wurde auf Ihrem anderen Gerät abgelehnt: Die Zahl stimmte nicht. Wenn Sie das waren, senden Sie eine neue.";
    /// The button that goes to the identity provider.
    UpstreamStart = "upstream.start",
        en: "Continue at your identity provider",
        de: "Weiter bei Ihrem Identitätsanbieter";
    /// The page between the identity provider's answer and the step-up.
    UpstreamReturning = "upstream.returning",
        en: "Finishing your confirmation …",
        de: "Ihre Bestätigung wird abgeschlossen …";
    /// Its link, where the page does not continue by itself.
    UpstreamContinue = "upstream.continue",
        en: "Continue",
        de: "Weiter";
    /// The identity provider did not confirm the user.
    ErrorUpstreamRefused = "error.upstream_refused",
        en: "Your identity provider did not confirm it's you. Try again, or choose another way.",
        de: "Ihr Identitätsanbieter hat nicht bestätigt, dass Sie es sind. Versuchen Sie es erneut oder wählen Sie einen anderen Weg.";
    /// The identity provider's answer came too late, twice, or in another session.
    ErrorUpstreamExpired = "error.upstream_expired",
        en: "This confirmation has expired or was already used. Please start again.",
        de: "Diese Bestätigung ist abgelaufen oder wurde bereits verwendet. Bitte beginnen Sie erneut.";
    /// The identity provider's answer failed a check.
    ErrorUpstreamRejected = "error.upstream_rejected",
        en: "The answer from your identity provider could not be accepted. Please start again, or choose another way.",
        de: "Die Antwort Ihres Identitätsanbieters konnte nicht angenommen werden. Bitte beginnen Sie erneut oder wählen Sie einen anderen Weg.";
    /// The user has no account at the identity provider, or it proves too little.
    ErrorUpstreamNotUsable = "error.upstream_not_usable",
        en: "Your identity provider cannot confirm this. Please choose another way.",
        de: "Ihr Identitätsanbieter kann dies nicht bestätigen. Bitte wählen Sie einen anderen Weg.";
    /// The approve page's question (on the other device).
    ApproveQuestion = "approve.question",
        en: "Approve this confirmation?",
        de: "Diese Bestätigung genehmigen?";
    /// The approve page's note: only if the user asked.
    ApproveOnlyIfYou = "approve.only_if_you",
        en: "Approve only if you just asked for it in your browser: enter the number it shows. If you did not ask, ignore this page.",
        de: "Genehmigen Sie nur, wenn Sie es gerade in Ihrem Browser angefordert haben: Geben Sie die Zahl ein, die er anzeigt. Wenn nicht, ignorieren Sie diese Seite.";
    /// The approve button.
    ApproveButton = "approve.button",
        en: "Approve",
        de: "Genehmigen";
    /// Where the request came from (`{browser}`, `{network}`).
    ApproveAskedFrom = "approve.asked_from",
        en: "Asked from {browser} on the network {network}.",
        de: "Angefordert von {browser} im Netz {network}.";
    /// A browser that sent no `User-Agent`.
    UnknownBrowser = "approve.unknown_browser",
        en: "an unknown browser",
        de: "einem unbekannten Browser";
    /// A browser of no family we name.
    OtherBrowser = "approve.other_browser",
        en: "another browser",
        de: "einem anderen Browser";
    /// No client address known.
    UnknownNetwork = "approve.unknown_network",
        en: "(unknown)",
        de: "(unbekannt)";
    /// The number field's label on the approve page.
    ApproveNumberLabel = "approve.number_label",
        en: "The number shown in the browser that asked",
        de: "Die Zahl, die der anfragende Browser anzeigt";
    /// The number on the waiting page (`{number}`).
    ApprovalNumber = "approval.number",
        en: "On your other device, enter {number}.",
        de: "Geben Sie auf Ihrem anderen Gerät {number} ein.";
    /// A wrong number: the approval is void.
    ApproveWrongNumber = "approve.wrong_number",
        en: "That is not the number shown in the browser that asked, so nothing was approved and the request is void. If you did not ask for it, someone may be signed in as you: sign out on all devices and change your password.",
        de: "Das ist nicht die Zahl, die der anfragende Browser anzeigt. Es wurde nichts genehmigt, die Anfrage ist ungültig. Wenn Sie sie nicht gestellt haben, ist womöglich jemand als Sie angemeldet: Melden Sie sich auf allen Geräten ab und ändern Sie Ihr Passwort.";
    /// After approving.
    Approved = "approve.done",
        en: "Approved. You can close this page: your browser continues.",
        de: "Genehmigt. Sie können diese Seite schließen: Ihr Browser macht weiter.";
    /// A link that was used, expired or never was.
    ApproveGone = "approve.gone",
        en: "This approval link has expired or was already used.",
        de: "Dieser Genehmigungslink ist abgelaufen oder wurde schon verwendet.";
    /// The last confirmation is too old.
    DetailStale = "detail.stale",
        en: "Your last confirmation was a while ago.",
        de: "Ihre letzte Bestätigung liegt schon eine Weile zurück.";
    /// A stronger level is needed.
    DetailInsufficientLevel = "detail.insufficient_level",
        en: "This needs a stronger confirmation than the last one.",
        de: "Hierfür ist eine stärkere Bestätigung als die letzte nötig.";
    /// A particular method is needed.
    DetailMissingMethod = "detail.missing_method",
        en: "This needs a particular way of confirming, offered below.",
        de: "Hierfür ist eine bestimmte Art der Bestätigung nötig, die unten angeboten wird.";
    /// The epoch was bumped.
    DetailRevoked = "detail.revoked",
        en: "Your earlier confirmations were reset.",
        de: "Ihre früheren Bestätigungen wurden zurückgesetzt.";
    /// The token belongs to another session.
    DetailOtherBinding = "detail.other_binding",
        en: "Your earlier confirmation belongs to another sign-in.",
        de: "Ihre frühere Bestätigung gehört zu einer anderen Anmeldung.";
    /// The request comes from another network or browser than the
    /// confirmation.
    DetailOtherContext = "detail.other_context",
        en: "You are on another network or browser than when you last confirmed.",
        de: "Sie sind in einem anderen Netzwerk oder Browser als bei Ihrer letzten Bestätigung.";
    /// A bound action needs its own confirmation.
    DetailActionNotConfirmed = "detail.action_not_confirmed",
        en: "This action needs a confirmation of its own.",
        de: "Diese Aktion braucht eine eigene Bestätigung.";
    /// A bound action needs one more method.
    DetailOneMoreWay = "detail.one_more_way",
        en: "Thank you — this needs one more way of confirming it's you.",
        de: "Danke – hierfür ist noch eine weitere Bestätigung nötig.";
    /// A bound action's ceremony is gone.
    DetailConfirmationGone = "detail.confirmation_gone",
        en: "This confirmation expired or was used. Go back and submit the form again.",
        de: "Diese Bestätigung ist abgelaufen oder wurde bereits verwendet. Gehen Sie zurück und senden Sie das Formular erneut ab.";
    /// A wrong answer.
    ErrorWrong = "error.wrong",
        en: "That was not right. Please try again.",
        de: "Das war nicht richtig. Bitte versuchen Sie es erneut.";
    /// A wrong answer, with few attempts left.
    ErrorWrongFewLeft = "error.wrong_few_left",
        en: "That was not right. After a few more failures we will pause this for a while.",
        de: "Das war nicht richtig. Nach wenigen weiteren Fehlversuchen sperren wir diese Methode für eine Weile.";
    /// A lockout (`{duration}`: [`Minutes`](Text::Minutes) or [`OneMinute`](Text::OneMinute)).
    ErrorLockedOut = "error.locked_out",
        en: "Too many attempts. Please wait {duration} and try again.",
        de: "Zu viele Versuche. Bitte warten Sie {duration} und versuchen Sie es dann erneut.";
    /// A method paused after too many failures (`{method}`).
    ErrorDisabled = "error.disabled",
        en: "{method} is paused for this account after too many failed attempts; use another way to confirm.",
        de: "{method} ist für dieses Konto nach zu vielen Fehlversuchen gesperrt; bitte bestätigen Sie auf andere Weise.";
    /// A code used already.
    ErrorAlreadyUsed = "error.already_used",
        en: "That code was already used; wait for the next one.",
        de: "Dieser Code wurde bereits verwendet; warten Sie bitte auf den nächsten.";
    /// Input in the wrong format (`{detail}`: the engine's English sentence).
    ErrorFormat = "error.format",
        en: "{detail}.",
        de: "Die Eingabe hat nicht das erwartete Format.";
    /// A method not enrolled (`{method}`).
    ErrorNotEnrolled = "error.not_enrolled",
        en: "{method} is not set up for this account.",
        de: "{method} ist für dieses Konto nicht eingerichtet.";
    /// No code waiting.
    ErrorNoPendingCode = "error.no_pending_code",
        en: "There is no valid code waiting; send a new one.",
        de: "Es wartet kein gültiger Code; fordern Sie bitte einen neuen an.";
    /// No passkey ceremony waiting.
    ErrorNoPendingCeremony = "error.no_pending_ceremony",
        en: "That passkey request has expired or was already used; start again.",
        de: "Diese Passkey-Anfrage ist abgelaufen oder wurde bereits verwendet; bitte beginnen Sie erneut.";
    /// A bound action's ceremony expired or was used.
    ErrorNoPendingAction = "error.no_pending_action",
        en: "This confirmation has expired or was already used; go back and submit again.",
        de: "Diese Bestätigung ist abgelaufen oder wurde bereits verwendet; gehen Sie zurück und senden Sie erneut ab.";
    /// A passkey answer that did not verify.
    ErrorPasskeyRejected = "error.passkey_rejected",
        en: "The passkey could not be verified.",
        de: "Der Passkey konnte nicht überprüft werden.";
    /// No enrollment waiting.
    ErrorNoPendingEnrollment = "error.no_pending_enrollment",
        en: "There is no pending enrollment to confirm; start again.",
        de: "Es wartet keine Einrichtung auf Bestätigung; bitte beginnen Sie erneut.";
    /// An account recovery refused (`{detail}`: the engine's English sentence).
    ErrorRecovery = "error.recovery",
        en: "{detail}.",
        de: "Eine Kontowiederherstellung ist gerade nicht möglich.";
    /// A duration of several minutes (`{minutes}`).
    Minutes = "minutes",
        en: "{minutes} minutes",
        de: "{minutes} Minuten";
    /// A duration of one minute.
    OneMinute = "one_minute",
        en: "1 minute",
        de: "1 Minute";
    /// The enrollment page's title.
    EnrollTitle = "enroll.title",
        en: "Set up a way to confirm it's you",
        de: "Richten Sie eine Möglichkeit ein, Ihre Identität zu bestätigen";
    /// The authenticator-app offer (`{digits}`).
    EnrollTotpIntro = "enroll.totp_intro",
        en: "Use an authenticator app (such as the one on your phone) to confirm it's you with a {digits}-digit code.",
        de: "Bestätigen Sie Ihre Identität mit einem {digits}-stelligen Code aus einer Authenticator-App (zum Beispiel auf Ihrem Smartphone).";
    /// The button starting an authenticator-app enrollment.
    EnrollTotpStart = "enroll.totp_start",
        en: "Set up an authenticator app",
        de: "Authenticator-App einrichten";
    /// The passkey offer.
    EnrollPasskeyIntro = "enroll.passkey_intro",
        en: "A passkey lets you confirm it's you with your device's screen lock or a security key.",
        de: "Mit einem Passkey bestätigen Sie Ihre Identität über die Displaysperre Ihres Geräts oder einen Sicherheitsschlüssel.";
    /// The button creating a passkey.
    EnrollPasskeyCreate = "enroll.passkey_create",
        en: "Create a passkey",
        de: "Passkey erstellen";
    /// Without JavaScript, on the enrollment page.
    EnrollPasskeyNoScript = "enroll.passkey_no_script",
        en: "Creating a passkey needs JavaScript.",
        de: "Zum Erstellen eines Passkeys wird JavaScript benötigt.";
    /// Above the QR code.
    EnrollScan = "enroll.scan",
        en: "Scan this code with your authenticator app:",
        de: "Scannen Sie diesen Code mit Ihrer Authenticator-App:";
    /// The QR code's alternative text.
    EnrollQrAlt = "enroll.qr_alt",
        en: "QR code for your authenticator app",
        de: "QR-Code für Ihre Authenticator-App";
    /// Before the manual key.
    EnrollManualKey = "enroll.manual_key",
        en: "Or enter this key by hand:",
        de: "Oder geben Sie diesen Schlüssel von Hand ein:";
    /// The confirming code's label.
    EnrollConfirmLabel = "enroll.confirm_label",
        en: "The code your app shows now",
        de: "Der Code, den Ihre App gerade anzeigt";
    /// Above fresh recovery codes.
    EnrollCodesKeep = "enroll.codes_keep",
        en: "Keep these recovery codes somewhere safe. Each works once; they are shown only now.",
        de: "Bewahren Sie diese Wiederherstellungscodes sicher auf. Jeder funktioniert nur einmal; sie werden nur jetzt angezeigt.";
    /// The enrollment page's way out.
    Done = "enroll.done",
        en: "Done",
        de: "Fertig";
    /// An authenticator app was set up.
    TotpEnrolled = "enroll.totp_enrolled",
        en: "Your authenticator app is set up.",
        de: "Ihre Authenticator-App ist eingerichtet.";
    /// The authenticator app was removed.
    TotpRemoved = "enroll.totp_removed",
        en: "Your authenticator app was removed.",
        de: "Ihre Authenticator-App wurde entfernt.";
    /// A passkey was removed.
    PasskeyRemoved = "enroll.passkey_removed",
        en: "The passkey was removed.",
        de: "Der Passkey wurde entfernt.";
    /// The confirmation page's title.
    ResumeTitle = "resume.title",
        en: "Check and continue",
        de: "Prüfen und fortfahren";
    /// The confirmation page's sentence.
    ResumeIntro = "resume.intro",
        en: "You confirmed it's you. Nothing has been done yet.",
        de: "Sie haben Ihre Identität bestätigt. Es wurde noch nichts ausgeführt.";
    /// The confirmation page's way out.
    ResumeCancel = "resume.cancel",
        en: "Cancel: go back without doing it",
        de: "Abbrechen: zurück, ohne es auszuführen";
    /// A kept form sent twice: the title.
    AlreadySubmittedTitle = "notice.already_submitted.title",
        en: "Already submitted",
        de: "Bereits abgesendet";
    /// A kept form sent twice: the sentence.
    AlreadySubmitted = "notice.already_submitted",
        en: "This form was already submitted once. It was not sent again.",
        de: "Dieses Formular wurde bereits einmal abgesendet. Es wurde nicht erneut gesendet.";
    /// A kept form sent twice: the link to where it went.
    SeeFirstSubmission = "notice.see_first_submission",
        en: "See what your first submission did",
        de: "Ergebnis der ersten Übermittlung ansehen";
    /// A notice's link back.
    GoBack = "notice.go_back",
        en: "Go back",
        de: "Zurück";
    /// A kept form expired: the title.
    NothingToContinueTitle = "notice.nothing_to_continue.title",
        en: "Nothing to continue",
        de: "Nichts fortzusetzen";
    /// A kept form expired: the sentence.
    NothingToContinue = "notice.nothing_to_continue",
        en: "This form is no longer waiting: it expired, or it was sent already. Nothing was sent now.",
        de: "Dieses Formular wartet nicht mehr: Es ist abgelaufen oder wurde bereits gesendet. Jetzt wurde nichts gesendet.";
    /// A kept form changed: the title.
    FormChangedTitle = "notice.form_changed.title",
        en: "The form changed",
        de: "Das Formular hat sich geändert";
    /// A kept form changed: the sentence.
    FormChanged = "notice.form_changed",
        en: "This form is not the one you confirmed, so nothing was sent. Please fill it in again.",
        de: "Dies ist nicht das Formular, das Sie bestätigt haben, daher wurde nichts gesendet. Bitte füllen Sie es erneut aus.";
    /// The code message (`{code}`, `{confirms}`: [`CodeConfirms`](Text::CodeConfirms)
    /// or nothing, `{duration}`).
    CodeMessage = "code_message",
        en: "Your confirmation code is {code}.{confirms} It is valid for {duration}. If you did not ask for it, do not share it.",
        de: "Ihr Bestätigungscode lautet {code}.{confirms} Er ist {duration} gültig. Wenn Sie ihn nicht angefordert haben, geben Sie ihn nicht weiter.";
    /// What a code confirms, inside the code message (`{action}`).
    CodeConfirms = "code_message.confirms",
        en: " It confirms: {action}.",
        de: " Er bestätigt: {action}.";
}

/// The texts of every language: English and German built in, with the
/// application's additions and replacements. Build it once at start-up
/// and share it (the routes hold it in an `Arc`).
///
/// ```
/// use stepup_challenge::i18n::{Catalogue, Lang, Text};
///
/// let mut catalogue = Catalogue::new();
/// // Replace one German text; every other stays built in.
/// catalogue.insert(Lang::DE, Text::Confirm, "Weiter");
/// assert_eq!(catalogue.get(Lang::DE, Text::Confirm), "Weiter");
/// assert_eq!(catalogue.get(Lang::DE, Text::PasswordLabel), "Ihr Passwort");
/// assert!(catalogue.has(Lang::DE) && !catalogue.has(Lang::parse("fr").unwrap()));
/// ```
#[derive(Clone, Default)]
pub struct Catalogue {
    /// The application's texts, over the built-in ones.
    added: BTreeMap<Lang, HashMap<Text, String>>,
}

static BUILT_IN: LazyLock<Arc<Catalogue>> = LazyLock::new(|| Arc::new(Catalogue::new()));

impl Catalogue {
    /// English and German, complete.
    pub fn new() -> Catalogue {
        Catalogue::default()
    }

    /// The built-in catalogue, shared (what the pages use unless told
    /// otherwise).
    pub fn built_in() -> Arc<Catalogue> {
        BUILT_IN.clone()
    }

    /// Adds or replaces `text` in `lang` (adding the language if it is
    /// new). Placeholders in braces are filled as in the built-in text.
    pub fn insert(&mut self, lang: Lang, text: Text, value: impl Into<String>) -> &mut Self {
        self.added
            .entry(lang)
            .or_default()
            .insert(text, value.into());
        self
    }

    /// [`insert`](Catalogue::insert), by value: for building a catalogue in one expression.
    ///
    /// ```
    /// use stepup_challenge::i18n::{Catalogue, Lang, Text};
    /// let fr = Lang::parse("fr").unwrap();
    /// let catalogue = Catalogue::new().with(fr, Text::Confirm, "Confirmer");
    /// assert_eq!(catalogue.get(fr, Text::Confirm), "Confirmer");
    /// ```
    #[must_use]
    pub fn with(mut self, lang: Lang, text: Text, value: impl Into<String>) -> Self {
        self.insert(lang, text, value);
        self
    }

    /// Whether `lang` has texts (built in or added).
    pub fn has(&self, lang: Lang) -> bool {
        lang == Lang::EN || lang == Lang::DE || self.added.contains_key(&lang)
    }

    /// The languages with texts, English first.
    pub fn languages(&self) -> Vec<Lang> {
        let mut all = vec![Lang::EN, Lang::DE];
        all.extend(
            self.added
                .keys()
                .filter(|l| !all.contains(l))
                .copied()
                .collect::<Vec<_>>(),
        );
        all
    }

    /// `text` in `lang`: the application's, else the built-in one, else
    /// the English one (the application's English replacement first).
    pub fn get(&self, lang: Lang, text: Text) -> &str {
        if let Some(value) = self.added.get(&lang).and_then(|t| t.get(&text)) {
            return value;
        }
        if lang == Lang::DE {
            return text.german();
        }
        if let Some(value) = self.added.get(&Lang::EN).and_then(|t| t.get(&text)) {
            return value;
        }
        text.english()
    }

    /// `text` in `lang` with its placeholders (`{name}`) filled from
    /// `args`; a placeholder without a value is left as it is. Values are
    /// inserted as plain text (the pages escape everything).
    pub fn format(&self, lang: Lang, text: Text, args: &[(&str, &dyn fmt::Display)]) -> String {
        fill(self.get(lang, text), args)
    }

    /// `{minutes} minutes`, or `1 minute`, in `lang`.
    ///
    /// ```
    /// use stepup_challenge::i18n::{Catalogue, Lang};
    /// let catalogue = Catalogue::new();
    /// assert_eq!(catalogue.minutes(Lang::EN, 1), "1 minute");
    /// assert_eq!(catalogue.minutes(Lang::DE, 10), "10 Minuten");
    /// ```
    pub fn minutes(&self, lang: Lang, minutes: u64) -> String {
        if minutes == 1 {
            self.get(lang, Text::OneMinute).to_owned()
        } else {
            self.format(lang, Text::Minutes, &[("minutes", &minutes)])
        }
    }

    /// The language for an `Accept-Language` header: the most preferred
    /// one this catalogue has ([`negotiate`]), else English.
    pub fn negotiate(&self, accept_language: Option<&[u8]>) -> Lang {
        accept_language
            .and_then(|header| negotiate(header, |lang| self.has(lang)))
            .unwrap_or(Lang::EN)
    }
}

impl fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalogue")
            .field("languages", &self.languages())
            .finish()
    }
}

/// Fills `{name}` placeholders of `template` from `args`.
fn fill(template: &str, args: &[(&str, &dyn fmt::Display)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            args.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (close, v.to_string()))
        });
        match value {
            Some((close, value)) => {
                out.push_str(&value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// How much of an `Accept-Language` header is read: browsers send well
/// under 200 bytes; a longer one is cut here, so a huge header costs no
/// more than this.
pub const MAX_ACCEPT_LANGUAGE: usize = 1024;

/// How many entries of an `Accept-Language` header are looked at.
const MAX_ENTRIES: usize = 32;

/// The language `accept_language` (the header's value) prefers most among
/// those `available` accepts, by q-value (ties: the earlier entry), each
/// matched by its primary subtag (`de-CH` → `de`). `*` stands for English.
/// A language with `q=0` is refused. `None` when nothing available is
/// acceptable or the header is unreadable: the caller falls back to
/// English. Reads at most [`MAX_ACCEPT_LANGUAGE`] bytes and 32 entries;
/// never panics.
///
/// ```
/// use stepup_challenge::i18n::{Lang, negotiate};
/// let ours = |l: Lang| l == Lang::EN || l == Lang::DE;
/// assert_eq!(negotiate(b"de-CH, en;q=0.5", ours), Some(Lang::DE));
/// assert_eq!(negotiate(b"fr, en;q=0.1, de;q=0.2", ours), Some(Lang::DE));
/// assert_eq!(negotiate(b"fr", ours), None);
/// assert_eq!(negotiate(b"\xff\xfe", ours), None);
/// ```
pub fn negotiate(accept_language: &[u8], available: impl Fn(Lang) -> bool) -> Option<Lang> {
    let cut = &accept_language[..accept_language.len().min(MAX_ACCEPT_LANGUAGE)];
    let text = match std::str::from_utf8(cut) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&cut[..e.valid_up_to()]).unwrap_or(""),
    };
    let mut refused: Vec<Lang> = Vec::new();
    let mut best: Option<(u16, Lang)> = None;
    for entry in text.split(',').take(MAX_ENTRIES) {
        let mut parts = entry.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let mut q = Some(1000);
        for param in parts {
            if let Some((name, value)) = param.split_once('=')
                && name.trim().eq_ignore_ascii_case("q")
            {
                q = quality(value.trim());
            }
        }
        // An unreadable q-value: the entry is ignored.
        let Some(q) = q else { continue };
        let lang = if tag == "*" {
            Lang::EN
        } else {
            match Lang::parse(tag) {
                Some(lang) => lang,
                None => continue,
            }
        };
        if q == 0 {
            refused.push(lang);
            continue;
        }
        if !available(lang) || refused.contains(&lang) {
            continue;
        }
        if best.is_none_or(|(b, _)| q > b) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, lang)| lang)
        .filter(|lang| !refused.contains(lang))
}

/// A q-value in thousandths (`1`, `0.8`, `0.125`), or `None` when it is
/// not one (RFC 9110 § 12.4.2).
fn quality(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths = 0u16;
    for (b, scale) in fraction.bytes().zip([100u16, 10, 1]) {
        thousandths += u16::from(b - b'0') * scale;
    }
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ours(lang: Lang) -> bool {
        lang == Lang::EN || lang == Lang::DE
    }

    fn pick(header: &[u8]) -> Lang {
        Catalogue::new().negotiate(Some(header))
    }

    #[test]
    fn negotiates_by_q_values() {
        assert_eq!(pick(b"de"), Lang::DE);
        assert_eq!(pick(b"en-US,en;q=0.9,de;q=0.8"), Lang::EN);
        assert_eq!(pick(b"en;q=0.4, de;q=0.6"), Lang::DE);
        assert_eq!(pick(b"fr-FR, fr;q=0.9, de;q=0.3, en;q=0.2"), Lang::DE);
        assert_eq!(pick(b"de;q=0.5, en;q=0.5"), Lang::DE, "ties: the earlier");
        assert_eq!(pick(b"de;Q=1.000"), Lang::DE);
        assert_eq!(pick(b"  de  ;  q=0.7  "), Lang::DE);
    }

    #[test]
    fn matches_primary_subtags() {
        assert_eq!(pick(b"de-CH"), Lang::DE);
        assert_eq!(pick(b"de-AT, en;q=0.5"), Lang::DE);
        assert_eq!(pick(b"DE-de"), Lang::DE);
        assert_eq!(pick(b"de-Latn-CH"), Lang::DE);
    }

    #[test]
    fn wildcards_and_refusals() {
        assert_eq!(pick(b"*"), Lang::EN);
        assert_eq!(pick(b"fr, *;q=0.5"), Lang::EN);
        assert_eq!(pick(b"de;q=0, *"), Lang::EN);
        assert_eq!(pick(b"*, de;q=0"), Lang::EN);
        assert_eq!(pick(b"de;q=0"), Lang::EN);
        assert_eq!(negotiate(b"en;q=0", ours), None);
    }

    #[test]
    fn falls_back_to_english() {
        assert_eq!(pick(b""), Lang::EN);
        assert_eq!(pick(b"xx"), Lang::EN);
        assert_eq!(pick(b"fr, it;q=0.5"), Lang::EN);
        assert_eq!(Catalogue::new().negotiate(None), Lang::EN);
    }

    #[test]
    fn garbage_is_english_and_never_a_panic() {
        for header in [
            &b",,,;;;===="[..],
            b"de;q=2",
            b"de;q=0.0001",
            b"de;q=-1",
            b"de;q=",
            b"de;q=abc",
            b"de;q=0.\xff",
            b"\xc3\x28",
            b"\xff",
            b"d",
            b"123, de-;q",
            b";q=1",
            b"abcdefghijk",
            b"\0\0\0",
            "ö, ü;q=1".as_bytes(),
        ] {
            let lang = pick(header);
            assert!(lang == Lang::EN || lang == Lang::DE, "{header:?}");
        }
        assert_eq!(pick(b"de;q=2"), Lang::EN, "a bad q-value ignores the entry");
        assert_eq!(
            pick(b"\xff, de"),
            Lang::EN,
            "invalid UTF-8: nothing after it"
        );
        assert_eq!(pick(b"de, \xff"), Lang::DE);
    }

    #[test]
    fn very_long_headers_are_cut() {
        let mut header = "fr;q=0.1, ".repeat(100_000).into_bytes();
        header.extend_from_slice(b"de");
        assert_eq!(
            pick(&header),
            Lang::EN,
            "the German entry is beyond the cut"
        );
        let mut header = b"de;q=0.9, ".to_vec();
        header.extend(std::iter::repeat_n(b'x', 10_000_000));
        assert_eq!(pick(&header), Lang::DE);
        let many = "xx, ".repeat(MAX_ENTRIES) + "de";
        assert!(many.len() < MAX_ACCEPT_LANGUAGE);
        assert_eq!(pick(many.as_bytes()), Lang::EN, "at most 32 entries");
    }

    #[test]
    fn quality_values() {
        assert_eq!(quality("1"), Some(1000));
        assert_eq!(quality("1.0"), Some(1000));
        assert_eq!(quality("1.000"), Some(1000));
        assert_eq!(quality("1.001"), None);
        assert_eq!(quality("0"), Some(0));
        assert_eq!(quality("0.5"), Some(500));
        assert_eq!(quality("0.125"), Some(125));
        assert_eq!(quality(".5"), None);
        assert_eq!(quality("0.1234"), None);
        assert_eq!(quality(""), None);
    }

    #[test]
    fn every_text_in_both_languages_with_known_placeholders() {
        for &text in Text::ALL {
            assert!(!text.english().is_empty() && !text.german().is_empty());
            let names = |s: &str| {
                let mut names: Vec<String> = s
                    .split('{')
                    .skip(1)
                    .filter_map(|p| p.split_once('}').map(|(n, _)| n.to_owned()))
                    .collect();
                names.sort();
                names
            };
            // German may leave out the engine's English detail, never add one.
            let english = names(text.english());
            assert!(
                names(text.german()).iter().all(|n| english.contains(n)),
                "{text:?}"
            );
            assert_eq!(Text::from_key(text.key()), Some(text));
        }
    }

    #[test]
    fn added_languages_fall_back_per_text() {
        let fr = Lang::parse("fr").unwrap();
        let mut catalogue = Catalogue::new();
        catalogue.insert(fr, Text::Confirm, "Confirmer");
        catalogue.insert(Lang::EN, Text::GoBack, "Back");
        assert_eq!(catalogue.get(fr, Text::Confirm), "Confirmer");
        assert_eq!(catalogue.get(fr, Text::GoBack), "Back");
        assert_eq!(catalogue.get(fr, Text::PasswordLabel), "Your password");
        assert_eq!(catalogue.get(Lang::DE, Text::GoBack), "Zurück");
        assert_eq!(catalogue.negotiate(Some(b"fr-BE")), fr);
        assert_eq!(catalogue.languages(), vec![Lang::EN, Lang::DE, fr]);
        assert_eq!(
            fill("{a}-{b}-{c", &[("a", &1), ("b", &"x")]),
            "1-x-{c",
            "unknown or unclosed placeholders stay"
        );
    }
}
