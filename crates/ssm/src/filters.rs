//! DescribeParameters' and GetParametersByPath's filters: `ParameterFilters` (Name, Type,
//! KeyId, Path, Tier, DataType, Label, `tag:<key>` with their options) and the deprecated
//! `Filters` (Name, Type, KeyId), validated with Parameter Store's errors.

use crate::error::{SsmError, SsmResult};
use crate::names;
use crate::store::{ParameterRecord, ParameterVersion};

/// Which operation the filters are for: the keys each accepts differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    Describe,
    ByPath,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Field {
    Name,
    Type,
    KeyId,
    Path,
    Tier,
    DataType,
    Label,
    Tag(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opt {
    Equals,
    BeginsWith,
    Contains,
    OneLevel,
    Recursive,
}

#[derive(Clone, Debug)]
struct Filter {
    key: Field,
    option: Opt,
    values: Vec<String>,
}

/// A validated set of filters; all must match.
#[derive(Clone, Debug, Default)]
pub struct FilterSet {
    filters: Vec<Filter>,
}

fn key_error(key: &str, use_: Use) -> SsmError {
    SsmError::InvalidFilterKey(match use_ {
        Use::Describe => format!(
            "The following filter key is not valid: {key}. Valid filter keys include: [Path, Name, Type, KeyId, Tier]."
        ),
        Use::ByPath => format!(
            "The following filter key is not valid: {key}. Valid filter keys include: [Type, KeyId]."
        ),
    })
}

fn value_error(value: &str, valid: &str) -> SsmError {
    SsmError::InvalidFilterValue(format!(
        "The following filter value is not valid: {value}. Valid values include: [{valid}]."
    ))
}

impl FilterSet {
    /// From `ParameterFilters`: (Key, Option, Values) each.
    pub fn parse(
        filters: &[(String, Option<String>, Vec<String>)],
        use_: Use,
    ) -> SsmResult<FilterSet> {
        let mut out: Vec<Filter> = Vec::new();
        for (key_s, option, values) in filters {
            let key = match key_s.as_str() {
                "Name" => Field::Name,
                "Type" => Field::Type,
                "KeyId" => Field::KeyId,
                "Path" => Field::Path,
                "Tier" => Field::Tier,
                "DataType" => Field::DataType,
                "Label" => Field::Label,
                k => match k.strip_prefix("tag:") {
                    Some(t) if !t.is_empty() => Field::Tag(t.to_string()),
                    _ => return Err(key_error(k, use_)),
                },
            };
            match (&key, use_) {
                (Field::Label, Use::Describe)
                | (Field::Name | Field::Path | Field::Tier, Use::ByPath) => {
                    return Err(key_error(key_s, use_));
                }
                _ => {}
            }
            if out.iter().any(|f| f.key == key) {
                return Err(SsmError::InvalidFilterKey(format!(
                    "The following filter is duplicated in the request: {key_s}. A request can contain only one occurrence of a specific filter."
                )));
            }
            if !matches!(key, Field::Tag(_)) && values.is_empty() {
                return Err(SsmError::InvalidFilterValue(format!(
                    "The following filter values are missing : null for filter key {key_s}."
                )));
            }
            let option = match (&key, option.as_deref()) {
                (Field::Path, None | Some("OneLevel")) => Opt::OneLevel,
                (Field::Path, Some("Recursive")) => Opt::Recursive,
                (Field::Path, Some(o)) => {
                    return Err(SsmError::InvalidFilterOption(format!(
                        "The following filter option is not valid: {o}. Valid options include: [Recursive, OneLevel]."
                    )));
                }
                (_, None | Some("Equals")) => Opt::Equals,
                (Field::Label, Some(o)) => {
                    return Err(SsmError::InvalidFilterOption(format!(
                        "The following filter option is not valid: {o}. Valid options include: [Equals]."
                    )));
                }
                (_, Some("BeginsWith")) => Opt::BeginsWith,
                (Field::Name, Some("Contains")) => Opt::Contains,
                (Field::Name, Some(o)) => {
                    return Err(SsmError::InvalidFilterOption(format!(
                        "The following filter option is not valid: {o}. Valid options include: [BeginsWith, Contains, Equals]."
                    )));
                }
                (_, Some(o)) => {
                    return Err(SsmError::InvalidFilterOption(format!(
                        "The following filter option is not valid: {o}. Valid options include: [BeginsWith, Equals]."
                    )));
                }
            };
            let mut values = values.clone();
            match key {
                Field::Path => {
                    for v in values.iter_mut() {
                        *v = names::validate_path(v)?;
                    }
                }
                Field::Type => {
                    if let Some(v) = values
                        .iter()
                        .find(|v| !matches!(v.as_str(), "String" | "StringList" | "SecureString"))
                    {
                        return Err(value_error(v, "String, StringList, SecureString"));
                    }
                }
                Field::Tier => {
                    if let Some(v) = values.iter().find(|v| {
                        !matches!(v.as_str(), "Standard" | "Advanced" | "Intelligent-Tiering")
                    }) {
                        return Err(value_error(v, "Standard, Advanced, Intelligent-Tiering"));
                    }
                }
                _ => {}
            }
            out.push(Filter {
                key,
                option,
                values,
            });
        }
        Ok(FilterSet { filters: out })
    }

    /// From the deprecated `Filters`: Name (begins with), Type and KeyId (equal).
    pub fn legacy(filters: &[(String, Vec<String>)]) -> SsmResult<FilterSet> {
        let mut out = Vec::new();
        for (key, values) in filters {
            let (key, option) = match key.as_str() {
                "Name" => (Field::Name, Opt::BeginsWith),
                "Type" => (Field::Type, Opt::Equals),
                "KeyId" => (Field::KeyId, Opt::Equals),
                k => return Err(key_error(k, Use::Describe)),
            };
            out.push(Filter {
                key,
                option,
                values: values.clone(),
            });
        }
        Ok(FilterSet { filters: out })
    }

    /// The labels a Label filter asks for (GetParametersByPath answers the labelled version).
    pub fn labels(&self) -> Option<&[String]> {
        self.filters
            .iter()
            .find(|f| f.key == Field::Label)
            .map(|f| f.values.as_slice())
    }

    /// The version of `record` the filters select, if it passes them: the current one, or
    /// with a Label filter the version carrying one of the labels.
    pub fn select<'a>(&self, record: &'a ParameterRecord) -> Option<&'a ParameterVersion> {
        let version = match self.labels() {
            Some(labels) => record
                .versions
                .iter()
                .rev()
                .find(|v| v.labels.iter().any(|l| labels.contains(l)))?,
            None => record.current(),
        };
        self.filters
            .iter()
            .all(|f| f.matches(record, version))
            .then_some(version)
    }

    pub fn matches(&self, record: &ParameterRecord) -> bool {
        self.select(record).is_some()
    }
}

impl Filter {
    fn matches(&self, record: &ParameterRecord, v: &ParameterVersion) -> bool {
        let test = |what: &str| -> bool {
            self.values.iter().any(|val| match self.option {
                Opt::Equals => what == val,
                Opt::BeginsWith => what.starts_with(val.as_str()),
                Opt::Contains => what.contains(val.as_str()),
                Opt::OneLevel | Opt::Recursive => false,
            })
        };
        match &self.key {
            Field::Name => {
                let full = format!("/{}", record.name.trim_start_matches('/'));
                match self.option {
                    Opt::Contains => test(&record.name),
                    _ => self.values.iter().any(|val| {
                        let val = format!("/{}", val.trim_start_matches('/'));
                        if self.option == Opt::Equals {
                            full == val
                        } else {
                            full.starts_with(&val)
                        }
                    }),
                }
            }
            Field::Path => self
                .values
                .iter()
                .any(|p| names::under_path(&record.name, p, self.option == Opt::Recursive)),
            Field::Type => test(v.r#type.as_str()),
            Field::KeyId => v.key_id.as_deref().is_some_and(test),
            Field::Tier => test(v.tier.as_str()),
            Field::DataType => test(&v.data_type),
            Field::Label => v.labels.iter().any(|l| self.values.contains(l)),
            Field::Tag(k) => match record.tags.get(k) {
                None => false,
                Some(_) if self.values.is_empty() => true,
                Some(val) => test(val),
            },
        }
    }
}

impl crate::store::ParameterFilter for FilterSet {
    fn select<'a>(&self, record: &'a ParameterRecord) -> Option<&'a ParameterVersion> {
        FilterSet::select(self, record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(k: &str, o: Option<&str>, v: &[&str]) -> (String, Option<String>, Vec<String>) {
        (
            k.into(),
            o.map(Into::into),
            v.iter().map(|s| s.to_string()).collect(),
        )
    }

    #[test]
    fn filter_keys_and_options_are_checked() {
        assert!(FilterSet::parse(&[f("Name", Some("BeginsWith"), &["/a"])], Use::Describe).is_ok());
        assert!(matches!(
            FilterSet::parse(&[f("Label", None, &["x"])], Use::Describe),
            Err(SsmError::InvalidFilterKey(_))
        ));
        assert!(matches!(
            FilterSet::parse(&[f("Name", None, &["x"])], Use::ByPath),
            Err(SsmError::InvalidFilterKey(_))
        ));
        assert!(matches!(
            FilterSet::parse(&[f("Type", Some("Contains"), &["String"])], Use::Describe),
            Err(SsmError::InvalidFilterOption(_))
        ));
        assert!(matches!(
            FilterSet::parse(&[f("Type", None, &["Nope"])], Use::Describe),
            Err(SsmError::InvalidFilterValue(_))
        ));
        assert!(matches!(
            FilterSet::parse(&[f("Type", None, &[])], Use::Describe),
            Err(SsmError::InvalidFilterValue(_))
        ));
        assert!(matches!(
            FilterSet::parse(&[f("Type", None, &["String"]), f("Type", None, &["String"])], Use::Describe),
            Err(SsmError::InvalidFilterKey(m)) if m.contains("duplicated")
        ));
        assert!(matches!(
            FilterSet::parse(&[f("Path", Some("Deep"), &["/a"])], Use::Describe),
            Err(SsmError::InvalidFilterOption(_))
        ));
        assert!(FilterSet::parse(&[f("tag:env", None, &[])], Use::Describe).is_ok());
    }
}
