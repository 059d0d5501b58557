//! `catalogs`: named documents by subject (API specifications, schemas), read at start.
//!
//! - `type: filesystem`, `options.subjects.NAME.path`: a file, relative to the configuration
//!   file's directory;
//! - `type: inline`, `options.subjects.NAME.schema`: the document written in the configuration
//!   (for tests and small setups).
//!
//! Every subject is read when the configuration is built: a file that cannot be read is a
//! start-up error naming the catalog, the subject and the file. Registry catalogs (schema
//! registries) are accepted by the model and refused here when a binding asks them for a
//! subject.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use zilla_config::{ConfigError, Mark, Node, from_node};

use crate::model::{Catalog as RawCatalog, CatalogType};

/// A document read from a catalog.
#[derive(Clone, Debug)]
pub struct Subject {
    /// Its text.
    pub text: String,
    /// The file it was read from (`None`: written inline in the configuration).
    pub file: Option<PathBuf>,
}

/// Every catalog's subjects.
#[derive(Debug, Default)]
pub struct Catalogs {
    catalogs: BTreeMap<String, Option<BTreeMap<String, Subject>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectsOptions {
    subjects: BTreeMap<String, SubjectOptions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectOptions {
    path: Option<String>,
    schema: Option<String>,
    /// Accepted as Zilla does; a file or inline subject has one version.
    #[serde(rename = "version")]
    _version: Option<String>,
}

impl Catalogs {
    /// Reads the subjects of the `catalogs` section; `base` is the configuration's directory.
    pub fn read(
        catalogs: &[(String, RawCatalog)],
        section: Option<&Node>,
        base: &Path,
    ) -> Result<Catalogs, ConfigError> {
        let mut read = BTreeMap::new();
        for (name, catalog) in catalogs {
            let node = section.and_then(|s| s.get(name));
            let subjects = match catalog.catalog_type {
                CatalogType::Filesystem | CatalogType::Inline => {
                    Some(subjects(name, catalog, node, base)?)
                }
                _ => None,
            };
            read.insert(name.clone(), subjects);
        }
        Ok(Catalogs { catalogs: read })
    }

    /// Every file a subject was read from.
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.catalogs
            .values()
            .flatten()
            .flat_map(|subjects| subjects.values())
            .filter_map(|subject| subject.file.as_ref())
    }

    /// The document `subject` of `catalog`; `mark` is where it is asked for.
    pub fn subject(
        &self,
        catalog: &str,
        subject: &str,
        mark: Mark,
    ) -> Result<&Subject, ConfigError> {
        let subjects = match self.catalogs.get(catalog) {
            None => {
                let known: Vec<&str> = self.catalogs.keys().map(String::as_str).collect();
                return Err(ConfigError::custom_at(
                    mark,
                    format!(
                        "catalog '{catalog}' is not defined (catalogs: {})",
                        list(&known)
                    ),
                ));
            }
            Some(None) => {
                return Err(ConfigError::custom_at(
                    mark,
                    format!(
                        "catalog '{catalog}' cannot hold API specifications: use a filesystem or inline catalog"
                    ),
                ));
            }
            Some(Some(subjects)) => subjects,
        };
        subjects.get(subject).ok_or_else(|| {
            let known: Vec<&str> = subjects.keys().map(String::as_str).collect();
            ConfigError::custom_at(
                mark,
                format!(
                    "catalog '{catalog}' has no subject '{subject}' (subjects: {})",
                    list(&known)
                ),
            )
        })
    }
}

fn subjects(
    name: &str,
    catalog: &RawCatalog,
    node: Option<&Node>,
    base: &Path,
) -> Result<BTreeMap<String, Subject>, ConfigError> {
    let options = catalog.options.as_ref().ok_or_else(|| {
        ConfigError::custom_at(
            node.map_or(Mark::UNKNOWN, |n| n.mark),
            format!("catalog '{name}' needs options.subjects"),
        )
    })?;
    let parsed: SubjectsOptions = from_node(options)?;
    let subjects_node = options.get("subjects");
    let mut out = BTreeMap::new();
    for (subject, options) in parsed.subjects {
        let at = subjects_node
            .and_then(|s| s.get(&subject))
            .map_or(Mark::UNKNOWN, |n| n.mark);
        let read = match (&catalog.catalog_type, options.path, options.schema) {
            (CatalogType::Filesystem, Some(path), None) => {
                let file = base.join(&path);
                let text = std::fs::read_to_string(&file).map_err(|err| {
                    ConfigError::custom_at(
                        at,
                        format!(
                            "catalog '{name}' subject '{subject}': cannot read {}: {err}",
                            file.display()
                        ),
                    )
                    .with_help("the path is relative to the configuration file's directory")
                })?;
                Subject {
                    text,
                    file: Some(file),
                }
            }
            (CatalogType::Inline, None, Some(schema)) => Subject {
                text: schema,
                file: None,
            },
            (CatalogType::Filesystem, ..) => {
                return Err(ConfigError::custom_at(
                    at,
                    format!(
                        "catalog '{name}' subject '{subject}' needs a 'path' (and no 'schema')"
                    ),
                ));
            }
            _ => {
                return Err(ConfigError::custom_at(
                    at,
                    format!(
                        "catalog '{name}' subject '{subject}' needs a 'schema' (and no 'path')"
                    ),
                ));
            }
        };
        out.insert(subject, read);
    }
    Ok(out)
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
