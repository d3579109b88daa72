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
            Rule::AllOf(set) => set.iter().all(|m| proven.contains(m)),
            Rule::Distinct(n) => distinct_count(proven) >= usize::from(*n),
        })
    }

    /// Whether `method` can take part in reaching this level.
    fn involves(&self, method: &Method) -> bool {
        self.rules.iter().any(|rule| match rule {
            Rule::AllOf(set) => set.contains(method),
            Rule::Distinct(_) => true,
        })
    }
}

fn distinct_count(proven: &[Method]) -> usize {
    proven
        .iter()
        .enumerate()
        .filter(|(i, m)| !proven[..*i].contains(m))
        .count()
}

/// The ordered table of levels a deployment announces.
///
/// The default follows NIST SP 800-63B's authenticator assurance levels:
///
/// | rank | acr | reached by |
/// |---|---|---|
/// | 1 | `aal1` | any one method |
/// | 2 | `aal2` | any second factor on top of the login (TOTP, passkey, e-mail or SMS code, recovery code), or two different methods |
/// | 3 | `aal3` | a phishing-resistant, user-verified factor: a passkey |
///
/// Rank 0 means "no level reached" (for example only a custom method the
/// table does not mention was proven).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelTable {
    levels: Vec<Level>,
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
        Ok(LevelTable { levels })
    }

    /// The NIST-style default table (see the type's documentation).
    pub fn nist() -> LevelTable {
        LevelTable {
            levels: vec![
                Level::new(1, "aal1").reached_by_distinct(1),
                Level::new(2, "aal2")
                    .reached_by_any_of([
                        Method::Totp,
                        Method::Passkey,
                        Method::EmailCode,
                        Method::SmsCode,
                        Method::RecoveryCode,
                    ])
                    .reached_by_distinct(2),
                Level::new(3, "aal3").reached_by_any_of([Method::Passkey]),
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
        assert_eq!(t.level_of(&[SmsCode]), 2);
        assert_eq!(
            t.level_of(&[Password, Password]),
            1,
            "one method twice is not two"
        );
        assert_eq!(t.level_of(&[Password, Method::custom("push").unwrap()]), 2);
        assert_eq!(t.level_of(&[Passkey]), 3);
        assert_eq!(t.acr(3), Some("aal3"));
        assert_eq!(t.rank_of_acr("aal2"), Some(2));
        assert!(t.method_helps_reach(&Passkey, 3));
        assert!(!t.method_helps_reach(&Totp, 3));
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
