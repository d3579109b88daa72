//! Levels of assurance: which sets of methods reach which level, and the `acr`
//! value each level is announced as.

use std::ops::Deref;
use std::sync::{Arc, LazyLock};

use crate::error::ConfigError;
use crate::method::Method;

/// One level of assurance: a rank, the `acr` string it is announced as, and the
/// rules saying which proven methods reach it.
///
/// A level is reached when **any one** of its rules holds:
/// [`reached_by`](Level::reached_by) (all of a set of methods),
/// [`reached_by_any_of`](Level::reached_by_any_of) (one method out of a list) or
/// [`reached_by_distinct`](Level::reached_by_distinct) (any N different methods).
/// A rule naming a method is met by any proof that
/// [satisfies](Method::satisfies) it, so a rule naming
/// [`Passkey`](Method::Passkey) is met by a
/// [`DeviceBoundPasskey`](Method::DeviceBoundPasskey) too.
///
/// ```
/// use stepup_core::{Level, LevelTable, Method};
///
/// let table = LevelTable::new([
///     Level::new(1, "silver").reached_by_distinct(1),
///     Level::new(2, "gold")
///         .reached_by_any_of([Method::Passkey])
///         .reached_by([Method::Password, Method::Totp]),
/// ])?;
/// assert_eq!(table.level_of(&[Method::Totp]), 1);
/// assert_eq!(table.level_of(&[Method::Totp, Method::Password]), 2);
/// assert_eq!(table.acr(2), Some("gold"));
/// # Ok::<(), stepup_core::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Level {
    rank: u8,
    acr: String,
    rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    AllOf(Vec<Method>),
    Distinct(u8),
}

impl Level {
    /// A level with no rules yet; add at least one.
    pub fn new(rank: u8, acr: impl Into<String>) -> Level {
        Level {
            rank,
            acr: acr.into(),
            rules: Vec::new(),
        }
    }

    /// Reached when **all** of `methods` are proven.
    pub fn reached_by(mut self, methods: impl IntoIterator<Item = Method>) -> Level {
        let mut set: Vec<Method> = methods.into_iter().collect();
        set.sort();
        set.dedup();
        if !set.is_empty() {
            self.rules.push(Rule::AllOf(set));
        }
        self
    }

    /// Reached when **any one** of `methods` is proven.
    pub fn reached_by_any_of(mut self, methods: impl IntoIterator<Item = Method>) -> Level {
        for m in methods {
            self.rules.push(Rule::AllOf(vec![m]));
        }
        self
    }

    /// Reached when at least `count` different methods are proven.
    pub fn reached_by_distinct(mut self, count: u8) -> Level {
        if count > 0 {
            self.rules.push(Rule::Distinct(count));
        }
        self
    }

    /// The rank: higher is stronger.
    pub fn rank(&self) -> u8 {
        self.rank
    }

    /// The `acr` value this level is announced as.
    pub fn acr(&self) -> &str {
        &self.acr
    }

    fn reached(&self, proven: &[Method]) -> bool {
        self.rules.iter().any(|rule| match rule {
            Rule::AllOf(set) => set
                .iter()
                .all(|required| proven.iter().any(|p| p.satisfies(required))),
            Rule::Distinct(n) => distinct_count(proven) >= usize::from(*n),
        })
    }

    /// Whether `method` can take part in reaching this level.
    fn involves(&self, method: &Method) -> bool {
        self.rules.iter().any(|rule| match rule {
            Rule::AllOf(set) => set.iter().any(|required| method.satisfies(required)),
            Rule::Distinct(_) => true,
        })
    }
}

/// How many different methods were proven, the two kinds of passkey
/// counting as one method (two WebAuthn credentials are not two kinds of
/// factor).
fn distinct_count(proven: &[Method]) -> usize {
    let same_kind = |a: &Method, b: &Method| a.satisfies(b) || b.satisfies(a);
    proven
        .iter()
        .enumerate()
        .filter(|(i, m)| !proven[..*i].iter().any(|earlier| same_kind(earlier, m)))
        .count()
}

/// The ordered table of levels a deployment announces.
///
/// The default, [`LevelTable::nist`], follows NIST SP 800-63B's
/// authenticator assurance levels:
///
/// | rank | acr | reached by | `amr` of those methods |
/// |---|---|---|---|
/// | 1 | `aal1` | any one method: password, e-mail or SMS code, a custom method … | `pwd`, `otp`, `sms`, … |
/// | 2 | `aal2` | TOTP, a passkey (synced or device-bound) or a recovery code | `otp`; `swk` `user`; `hwk` `user` |
/// | 3 | `aal3` | a device-bound passkey (not backup-eligible) | `hwk` `user` |
///
/// Deliberately **not** at level 2:
///
/// * **E-mail codes.** NIST does not accept e-mail as an out-of-band
///   authenticator: whoever reads the mailbox (often the same person who
///   reset the password through it) gets the code.
/// * **SMS codes**, unless the application opts in with
///   [`LevelTable::nist_with_restricted_sms`]: NIST SP 800-63B calls SMS a
///   *restricted* authenticator (SIM swaps, number porting, SS7
///   interception).
/// * **Two weak methods together.** Password plus an e-mail code is still
///   level 1: there is no "any two different methods" rule, since two
///   factors an attacker can take over the same way add nothing.
///
/// A synced passkey (backup-eligible, or of unknown kind: [`Method::Passkey`])
/// is level 2 with `amr` `swk`; only a passkey that cannot leave its
/// authenticator ([`Method::DeviceBoundPasskey`]) is level 3 with `hwk`.
///
/// Rank 0 means "no level reached" (for example only a custom method a
/// custom table does not mention was proven).
///
/// To change the table, build one with [`LevelTable::new`] and give it to
/// [`TokenConfig::with_levels`](crate::TokenConfig::with_levels): the issuer,
/// the gate and the challenges all use it.
///
/// ```
/// use stepup_core::{Key, KeyId, KeyRing, Level, LevelTable, Method, TokenConfig};
///
/// let nist = LevelTable::nist();
/// assert_eq!(nist.level_of(&[Method::Password, Method::EmailCode]), 1);
/// assert_eq!(nist.level_of(&[Method::Totp]), 2);
/// assert_eq!(nist.level_of(&[Method::Passkey]), 2);
/// assert_eq!(nist.level_of(&[Method::DeviceBoundPasskey]), 3);
///
/// // A deployment with its own vocabulary, where any passkey is the top level.
/// let own = LevelTable::new([
///     Level::new(1, "urn:bank:basic").reached_by_distinct(1),
///     Level::new(2, "urn:bank:strong").reached_by_any_of([Method::Totp, Method::Passkey]),
/// ])?;
/// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[42u8; 32])?);
/// let config = TokenConfig::new(ring).with_levels(own);
/// assert_eq!(config.levels().acr(2), Some("urn:bank:strong"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelTable {
    levels: Vec<Level>,
    /// The RFC 8176 `amr` values of the application's custom methods.
    amr: Vec<(Method, &'static [&'static str])>,
}

impl LevelTable {
    /// The longest `acr` value accepted.
    pub const MAX_ACR_LEN: usize = 128;

    /// Checks and orders a table: ranks from 1, distinct ranks and `acr`
    /// values, every `acr` safe to put in a header, every level reachable.
    pub fn new(levels: impl IntoIterator<Item = Level>) -> Result<LevelTable, ConfigError> {
        let mut levels: Vec<Level> = levels.into_iter().collect();
        if levels.is_empty() {
            return Err(ConfigError::NoLevels);
        }
        levels.sort_by_key(|l| l.rank);
        for (i, level) in levels.iter().enumerate() {
            if level.rank == 0 {
                return Err(ConfigError::RankZero);
            }
            if i > 0 && levels[i - 1].rank == level.rank {
                return Err(ConfigError::DuplicateRank(level.rank));
            }
            if !is_valid_acr(&level.acr) {
                return Err(ConfigError::InvalidAcr(
                    level.acr.chars().take(40).collect(),
                ));
            }
            if levels[..i].iter().any(|l| l.acr == level.acr) {
                return Err(ConfigError::DuplicateAcr(level.acr.clone()));
            }
            if level.rules.is_empty() {
                return Err(ConfigError::LevelWithoutRule(level.rank));
            }
        }
        Ok(LevelTable {
            levels,
            amr: Vec::new(),
        })
    }

    /// The default table, following NIST SP 800-63B (see the type's
    /// documentation): level 2 by TOTP, a passkey or a recovery code, level 3
    /// by a device-bound passkey; e-mail and SMS codes stay at level 1.
    ///
    /// ```
    /// use stepup_core::{LevelTable, Method};
    /// let t = LevelTable::nist();
    /// assert_eq!(t.level_of(&[Method::SmsCode]), 1);
    /// assert_eq!(t.acr(3), Some("aal3"));
    /// ```
    pub fn nist() -> LevelTable {
        Self::nist_levels(&[Method::Totp, Method::Passkey, Method::RecoveryCode])
    }

    /// [`nist`](LevelTable::nist), with SMS codes also reaching level 2 as
    /// NIST SP 800-63B's *restricted* authenticator.
    ///
    /// The risk: an SMS code proves control of a phone number, not of a
    /// device. SIM swaps, number porting and SS7 interception hand it to an
    /// attacker, and anyone who gets level 2 may be able to enrol factors of
    /// their own. NIST allows it only when users are told of the risk and
    /// offered a non-restricted alternative (TOTP or a passkey). Opt in only
    /// where that is the case, and prefer asking for those methods on the
    /// most sensitive routes.
    ///
    /// ```
    /// use stepup_core::{LevelTable, Method};
    /// let t = LevelTable::nist_with_restricted_sms();
    /// assert_eq!(t.level_of(&[Method::SmsCode]), 2);
    /// assert_eq!(t.level_of(&[Method::EmailCode]), 1);
    /// assert_eq!(LevelTable::nist().level_of(&[Method::SmsCode]), 1);
    /// ```
    pub fn nist_with_restricted_sms() -> LevelTable {
        Self::nist_levels(&[
            Method::Totp,
            Method::Passkey,
            Method::RecoveryCode,
            Method::SmsCode,
        ])
    }

    fn nist_levels(level_2: &[Method]) -> LevelTable {
        LevelTable {
            amr: Vec::new(),
            levels: vec![
                Level::new(1, "aal1").reached_by_distinct(1),
                Level::new(2, "aal2").reached_by_any_of(level_2.iter().copied()),
                Level::new(3, "aal3").reached_by_any_of([Method::DeviceBoundPasskey]),
            ],
        }
    }

    /// The highest rank reached by the `proven` methods, or 0 if none is.
    pub fn level_of(&self, proven: &[Method]) -> u8 {
        self.levels
            .iter()
            .rev()
            .find(|l| l.reached(proven))
            .map_or(0, |l| l.rank)
    }

    /// The rank one proof of `method` reaches on its own (0 if none): how
    /// strong a factor is in this deployment, for comparing factors (say,
    /// "replacing a factor needs a proof at least as strong").
    ///
    /// ```
    /// use stepup_core::{LevelTable, Method};
    /// let t = LevelTable::nist();
    /// assert_eq!(t.rank_of(Method::DeviceBoundPasskey), 3);
    /// assert_eq!(t.rank_of(Method::Passkey), 2);
    /// assert_eq!(t.rank_of(Method::Totp), 2);
    /// assert_eq!(t.rank_of(Method::EmailCode), 1);
    /// assert!(t.rank_of(Method::EmailCode) < t.rank_of(Method::Totp));
    /// ```
    pub fn rank_of(&self, method: Method) -> u8 {
        self.level_of(&[method])
    }

    /// The `acr` value of the level with this rank.
    pub fn acr(&self, rank: u8) -> Option<&str> {
        self.levels
            .iter()
            .find(|l| l.rank == rank)
            .map(|l| l.acr.as_str())
    }

    /// The rank announced as `acr`.
    pub fn rank_of_acr(&self, acr: &str) -> Option<u8> {
        self.levels.iter().find(|l| l.acr == acr).map(|l| l.rank)
    }

    /// The levels, lowest rank first.
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// Places the application's custom `method` in the table: proving it
    /// alone reaches every level from 2 up to `rank` that is reached by any
    /// one of a set of methods (as TOTP reaches NIST's `aal2`; level 1 is
    /// any one method already), and it contributes the RFC 8176 `amr`
    /// values `amr` (`mca` for an approval on another device, `hwk` for a
    /// hardware token, …). A built-in method is left as it is. Placing a
    /// method again replaces where it was (a lower rank lowers it).
    ///
    /// Rank 3 in [`LevelTable::nist`] is `aal3`, which NIST SP 800-63B
    /// reserves for phishing-resistant, hardware-bound authenticators: a
    /// push approval or a typed code is not one (an engine warns when an
    /// approval method reaches level 3).
    ///
    /// ```
    /// use stepup_core::{LevelTable, Method};
    /// let approve = Method::custom("approve")?;
    /// let table = LevelTable::nist().with_custom_method(approve, 2, &["mca"]);
    /// assert_eq!(table.level_of(&[approve]), 2);
    /// assert_eq!(table.amr_of(approve), ["mca"]);
    /// assert_eq!(LevelTable::nist().level_of(&[approve]), 1);
    /// // Placed again, lower: only where it was placed last.
    /// let table = table.with_custom_method(approve, 1, &["mca"]);
    /// assert_eq!(table.level_of(&[approve]), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_custom_method(
        mut self,
        method: Method,
        rank: u8,
        amr: &'static [&'static str],
    ) -> LevelTable {
        if !method.is_custom() {
            return self;
        }
        for level in &mut self.levels {
            level
                .rules
                .retain(|r| !matches!(r, Rule::AllOf(set) if set.as_slice() == [method]));
        }
        for level in self
            .levels
            .iter_mut()
            .filter(|l| l.rank >= 2 && l.rank <= rank)
        {
            let any_one = level
                .rules
                .iter()
                .any(|r| matches!(r, Rule::AllOf(set) if set.len() == 1));
            let already = level
                .rules
                .iter()
                .any(|r| matches!(r, Rule::AllOf(set) if set.as_slice() == [method]));
            if any_one && !already {
                level.rules.push(Rule::AllOf(vec![method]));
            }
        }
        self.amr.retain(|(m, _)| *m != method);
        self.amr.push((method, amr));
        self
    }

    /// The RFC 8176 `amr` values `method` contributes: a built-in
    /// method's ([`Method::amr`]), or what
    /// [`with_custom_method`](LevelTable::with_custom_method) gave a
    /// custom one (none otherwise).
    pub fn amr_of(&self, method: Method) -> &'static [&'static str] {
        if !method.is_custom() {
            return method.amr();
        }
        self.amr
            .iter()
            .find(|(m, _)| *m == method)
            .map_or(&[], |(_, amr)| amr)
    }

    /// The levels of rank `rank` or higher, lowest first.
    pub(crate) fn at_least(&self, rank: u8) -> impl Iterator<Item = &Level> {
        self.levels.iter().filter(move |l| l.rank >= rank)
    }

    /// The custom methods named by the rules of levels `rank` and higher.
    pub(crate) fn custom_methods_from(&self, rank: u8) -> Vec<Method> {
        let mut out: Vec<Method> = Vec::new();
        for level in self.at_least(rank) {
            for rule in &level.rules {
                if let Rule::AllOf(set) = rule {
                    for m in set.iter().filter(|m| m.is_custom()) {
                        if !out.contains(m) {
                            out.push(*m);
                        }
                    }
                }
            }
        }
        out
    }

    /// Whether `method` can help reach a level of rank `rank` or higher.
    pub(crate) fn method_helps_reach(&self, method: &Method, rank: u8) -> bool {
        self.at_least(rank).any(|l| l.involves(method))
    }
}

impl Default for LevelTable {
    fn default() -> Self {
        LevelTable::nist()
    }
}

/// A level table shared by the gate, the issuer and every assurance they
/// make. The default table is a process-wide static, so an assurance under
/// it carries no reference count (an atomic increment and decrement per
/// request, measurable at this scale); other tables are reference-counted.
#[derive(Clone, Debug)]
pub(crate) enum SharedLevels {
    Nist,
    Custom(Arc<LevelTable>),
}

static NIST: LazyLock<LevelTable> = LazyLock::new(LevelTable::nist);

impl SharedLevels {
    pub(crate) fn new(table: LevelTable) -> SharedLevels {
        if table == *NIST {
            SharedLevels::Nist
        } else {
            SharedLevels::Custom(Arc::new(table))
        }
    }
}

impl Deref for SharedLevels {
    type Target = LevelTable;
    fn deref(&self) -> &LevelTable {
        match self {
            SharedLevels::Nist => &NIST,
            SharedLevels::Custom(table) => table,
        }
    }
}

/// An `acr` goes inside a quoted, space-separated `acr_values` header
/// parameter, so it may use RFC 6750's value characters except the space.
fn is_valid_acr(acr: &str) -> bool {
    !acr.is_empty()
        && acr.len() <= LevelTable::MAX_ACR_LEN
        && acr
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Method::*;

    #[test]
    fn nist_defaults() {
        let t = LevelTable::nist();
        assert_eq!(t.level_of(&[]), 0);
        assert_eq!(t.level_of(&[Password]), 1);
        assert_eq!(t.level_of(&[Totp]), 2);
        assert_eq!(t.level_of(&[RecoveryCode]), 2);
        assert_eq!(t.level_of(&[SmsCode]), 1);
        assert_eq!(t.level_of(&[EmailCode]), 1);
        assert_eq!(t.level_of(&[Password, EmailCode]), 1);
        assert_eq!(t.level_of(&[Password, Method::custom("push").unwrap()]), 1);
        assert_eq!(t.level_of(&[Passkey]), 2);
        assert_eq!(t.level_of(&[DeviceBoundPasskey]), 3);
        assert_eq!(t.level_of(&[Passkey, Totp, Password]), 2);
        assert_eq!(t.acr(3), Some("aal3"));
        assert_eq!(t.rank_of_acr("aal2"), Some(2));
        assert!(t.method_helps_reach(&DeviceBoundPasskey, 3));
        assert!(t.method_helps_reach(&DeviceBoundPasskey, 2), "as a passkey");
        assert!(!t.method_helps_reach(&Passkey, 3));
        assert!(!t.method_helps_reach(&Totp, 3));
        assert!(!t.method_helps_reach(&EmailCode, 2));
        assert!(!t.method_helps_reach(&SmsCode, 2));
        assert!(LevelTable::nist_with_restricted_sms().method_helps_reach(&SmsCode, 2));
    }

    #[test]
    fn ranks_of_single_methods() {
        let t = LevelTable::nist();
        let ranks: Vec<(Method, u8)> = Method::BUILT_IN
            .iter()
            .map(|m| (*m, t.rank_of(*m)))
            .collect();
        assert_eq!(
            ranks,
            [
                (DeviceBoundPasskey, 3),
                (Passkey, 2),
                (Totp, 2),
                (Password, 1),
                (EmailCode, 1),
                (SmsCode, 1),
                (RecoveryCode, 2),
            ]
        );
        assert_eq!(LevelTable::nist_with_restricted_sms().rank_of(SmsCode), 2);
        let narrow = LevelTable::new([Level::new(2, "two").reached_by_any_of([Totp])]).unwrap();
        assert_eq!(narrow.rank_of(Password), 0);
        assert_eq!(narrow.rank_of(Totp), 2);
    }

    #[test]
    fn rules_naming_a_passkey_accept_a_device_bound_one() {
        let t = LevelTable::new([
            Level::new(1, "one").reached_by([Password, Passkey]),
            Level::new(2, "two").reached_by_distinct(2),
            Level::new(3, "three").reached_by([DeviceBoundPasskey, Totp]),
        ])
        .unwrap();
        assert_eq!(t.level_of(&[Password, DeviceBoundPasskey]), 2);
        assert_eq!(t.level_of(&[Totp, DeviceBoundPasskey]), 3);
        assert_eq!(t.level_of(&[Totp, Passkey]), 2);
        // Two kinds of passkey are one method, not two.
        assert_eq!(t.level_of(&[Passkey, DeviceBoundPasskey]), 0);
        assert_eq!(
            t.level_of(&[Password, Password]),
            0,
            "one method twice is not two"
        );
    }

    #[test]
    fn bad_tables_are_refused() {
        let ok = |r, a: &str| Level::new(r, a).reached_by_distinct(1);
        assert_eq!(LevelTable::new([]), Err(ConfigError::NoLevels));
        assert_eq!(LevelTable::new([ok(0, "a")]), Err(ConfigError::RankZero));
        assert_eq!(
            LevelTable::new([ok(1, "a"), ok(1, "b")]),
            Err(ConfigError::DuplicateRank(1))
        );
        assert_eq!(
            LevelTable::new([ok(1, "a"), ok(2, "a")]),
            Err(ConfigError::DuplicateAcr("a".into()))
        );
        for bad in ["", "with space", "quo\"te", "back\\slash", "é", "tab\t"] {
            assert!(
                matches!(
                    LevelTable::new([ok(1, bad)]),
                    Err(ConfigError::InvalidAcr(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            LevelTable::new([Level::new(1, "a")]),
            Err(ConfigError::LevelWithoutRule(1))
        );
    }

    #[test]
    fn table_is_sorted_by_rank() {
        let t = LevelTable::new([
            Level::new(5, "high").reached_by_any_of([Passkey]),
            Level::new(2, "low").reached_by_distinct(1),
        ])
        .unwrap();
        assert_eq!(t.levels()[0].rank(), 2);
        assert_eq!(t.level_of(&[Passkey]), 5);
    }
}
