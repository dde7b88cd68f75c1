//! The daemon's configuration: `spoor-config`'s [`Settings`] (flags, variables and the TOML
//! file, resolved and validated there), and its plugin entries, which that crate keeps as TOML
//! tables, turned into the plugin runtime's specs ([`PluginSettings`]).

use std::path::Path;

use spoor_plugin_host::{PluginSpec, PolicySection};

pub use spoor_config::*;

/// `[sampling.tail]` with the sections of its `plugin` policies as the plugin runtime reads
/// them.
pub type TailSettings = spoor_core::tail::TailConfig<PolicySection>;

/// The plugins the config file names, as the plugin runtime takes them.
#[derive(Debug, Clone, Default)]
pub struct PluginSettings {
    /// `[[plugins]]` in order, relative paths resolved against the config file's directory.
    pub chain: Vec<PluginSpec>,
    /// `[sampling.tail]` (`None`: off), its policy plugins' relative paths resolved likewise.
    pub tail: Option<TailSettings>,
}

impl PluginSettings {
    /// Reads the plugin entries of `settings`; an error names the config file and the entry
    /// (`plugins[1]`, `sampling.tail.policies[0].plugin`).
    pub fn resolve(settings: &Settings) -> anyhow::Result<PluginSettings> {
        let dir = settings.config_dir();
        let invalid = |at: &str, e: toml::de::Error| {
            let file = settings
                .config_file
                .as_deref()
                .map_or_else(String::new, |p| format!("config file {}: ", p.display()));
            anyhow::anyhow!("invalid {file}{at}: {}", e.to_string().trim_end())
        };
        let chain = settings
            .plugins
            .iter()
            .enumerate()
            .map(|(i, table)| {
                let mut spec: PluginSpec = toml::Value::Table(table.clone())
                    .try_into()
                    .map_err(|e| invalid(&format!("plugins[{i}]"), e))?;
                spec.path = in_dir(&dir, &spec.path);
                Ok(spec)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let tail = settings
            .tail_sampling
            .clone()
            .map(|tail| {
                tail.try_map_plugins(|at, table| {
                    let mut section: PolicySection = toml::Value::Table(table)
                        .try_into()
                        .map_err(|e| invalid(&format!("sampling.tail.{at}.plugin"), e))?;
                    section.path = in_dir(&dir, &section.path);
                    Ok::<_, anyhow::Error>(section)
                })
            })
            .transpose()?;
        Ok(PluginSettings { chain, tail })
    }
}

/// `path` taken from `dir` when relative.
fn in_dir(dir: &Path, path: &Path) -> std::path::PathBuf {
    if path.is_relative() {
        dir.join(path)
    } else {
        path.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> anyhow::Result<PluginSettings> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spoor.toml");
        std::fs::write(&path, text).unwrap();
        let settings = Settings::resolve(&Options {
            config: Some(path),
            ..Default::default()
        })?;
        PluginSettings::resolve(&settings)
    }

    #[test]
    fn plugin_entries_become_specs_with_paths_from_the_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spoor.toml");
        std::fs::write(
            &path,
            "[[plugins]]\nname = \"a\"\npath = \"a.wasm\"\nfuel = 7\nconfig = { keys = [\"x\"], when = 1979-05-27T07:32:00Z }\n\
             [[plugins]]\nname = \"b\"\npath = \"/abs/b.wasm\"\non-error = \"drop\"\n\
             [sampling.tail]\n[[sampling.tail.policies]]\nname = \"both\"\ntype = \"and\"\n\
             and = { sub_policies = [{ name = \"p\", type = \"plugin\", plugin = { path = \"p.wasm\", grant = [\"log\"] } }] }\n",
        )
        .unwrap();
        let settings = Settings::resolve(&Options {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        let p = PluginSettings::resolve(&settings).unwrap();
        let mut a = PluginSpec::new("a", dir.path().join("a.wasm"));
        a.fuel = 7;
        a.config =
            serde_json::from_str(r#"{"keys": ["x"], "when": "1979-05-27T07:32:00Z"}"#).unwrap();
        let mut b = PluginSpec::new("b", "/abs/b.wasm");
        b.on_error = spoor_plugin_host::OnError::Drop;
        assert_eq!(p.chain, [a, b]);
        let tail = p.tail.unwrap();
        let sections = tail.plugin_sections();
        let [(at, policy, section)] = &sections[..] else {
            panic!("{sections:?}");
        };
        assert_eq!(
            (at.as_str(), policy.name.as_str()),
            ("policies[0].and.sub_policies[0]", "p")
        );
        assert_eq!(section.path, dir.path().join("p.wasm"));
        assert_eq!(section.grant, [spoor_plugin_host::Capability::Log]);
    }

    #[test]
    fn a_bad_plugin_entry_is_named() {
        let err = resolve("[[plugins]]\nname = \"a\"\npath = \"a.wasm\"\n[[plugins]]\nname = \"b\"\npth = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid config file ")
                && err.ends_with(
                    "spoor.toml: plugins[1]: unknown field `pth`, expected one of `name`, `path`, `on-error`, `grant`, `fuel`, `memory-mib`, `max-output-ratio`, `max-output-bytes`, `config`"
                ),
            "{err}"
        );
        let err = resolve("[sampling.tail]\n[[sampling.tail.policies]]\nname = \"p\"\ntype = \"plugin\"\nplugin = { pth = \"x.wasm\" }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("spoor.toml: sampling.tail.policies[0].plugin: unknown field `pth`, expected one of `path`, `on-error`, `grant`, `fuel`, `memory-mib`, `config`"),
            "{err}"
        );
        // still refused by the config crate, naming the policy
        let err = resolve(
            "[sampling.tail]\n[[sampling.tail.policies]]\nname = \"p\"\ntype = \"plugin\"\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "invalid sampling.tail: policies[0] has type plugin but no plugin section"
        );
    }
}
