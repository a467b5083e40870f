//! Per-environment baseline: which (host, image) pairs normally load which crypto
//! modules, reach which destinations and send which JA4 fingerprints.
//!
//! ATT&CK says each environment must learn which processes normally use cryptography.
//! In `learn` mode the correlator records what joined processes do; in `detect` mode it
//! loads a saved baseline and names every departure (a new crypto module for that image,
//! a new destination, a new JA4) in the alert's reasons, raising its score. The file is
//! JSON; every set is capped ([`BaselineConfig::max_entries_per_image`],
//! [`BaselineConfig::max_images_per_host`], [`BaselineConfig::max_hosts`]), and what did
//! not fit is counted, never grown without bound.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What the correlator does with the baseline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineMode {
    /// No baseline (default).
    #[default]
    Off,
    /// Record what joined processes do; save it with [`Baseline::save`].
    Learn,
    /// Load `path` and report departures from it.
    Detect,
}

impl BaselineMode {
    /// The stable name (`off`, `learn`, `detect`).
    pub const fn as_str(self) -> &'static str {
        match self {
            BaselineMode::Off => "off",
            BaselineMode::Learn => "learn",
            BaselineMode::Detect => "detect",
        }
    }
}

/// Tunables of the baseline (config section `[baseline]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineConfig {
    /// `off` (default), `learn` or `detect`.
    pub mode: BaselineMode,
    /// The JSON file read in `detect` mode (and where a replay tool saves a learned one).
    pub path: Option<PathBuf>,
    /// Most values kept per set (modules, destinations, JA4s) per image. Default 256.
    pub max_entries_per_image: usize,
    /// Most images kept per host. Default 1024.
    pub max_images_per_host: usize,
    /// Most hosts kept. Default 4096.
    pub max_hosts: usize,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            mode: BaselineMode::Off,
            path: None,
            max_entries_per_image: 256,
            max_images_per_host: 1024,
            max_hosts: 4096,
        }
    }
}

/// Errors reading or writing a baseline file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BaselineError {
    /// The file could not be read or written.
    #[error("baseline file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a baseline.
    #[error("baseline file {path} is not valid baseline json: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// What one image on one host was seen doing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageProfile {
    /// Crypto module file names (lowercase).
    pub crypto_modules: BTreeSet<String>,
    /// Destinations as `ip:port` (`[ip]:port` for IPv6).
    pub destinations: BTreeSet<String>,
    /// JA4 fingerprints sent.
    pub ja4: BTreeSet<String>,
}

/// A learned baseline: host → image (lowercase) → profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Baseline {
    /// The profiles.
    pub hosts: BTreeMap<String, BTreeMap<String, ImageProfile>>,
    /// Values not recorded because a cap was reached.
    pub dropped: u64,
}

/// One observation of a joined process, to learn or to compare.
#[derive(Clone, Debug, Default)]
pub struct Observation<'a> {
    /// Host name.
    pub host: &'a str,
    /// Image path.
    pub image: &'a str,
    /// Crypto module paths the process loaded.
    pub crypto_modules: Vec<&'a str>,
    /// Destination `ip:port`.
    pub destination: Option<String>,
    /// JA4 sent, when the flow is TLS.
    pub ja4: Option<&'a str>,
}

fn module_key(path: &str) -> String {
    crate::detect::score::basename(path).to_ascii_lowercase()
}

impl Baseline {
    /// Load a baseline from a JSON file.
    ///
    /// # Errors
    /// [`BaselineError::Io`] when the file cannot be read, [`BaselineError::Json`] when it
    /// is not a baseline.
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Io {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| BaselineError::Json {
            path: path.to_owned(),
            source,
        })
    }

    /// Write the baseline as JSON.
    ///
    /// # Errors
    /// [`BaselineError::Io`] when the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), BaselineError> {
        let text = serde_json::to_string_pretty(self).map_err(|source| BaselineError::Json {
            path: path.to_owned(),
            source,
        })?;
        std::fs::write(path, text).map_err(|source| BaselineError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Record an observation, within the caps of `cfg`.
    pub fn learn(&mut self, cfg: &BaselineConfig, obs: &Observation<'_>) {
        if !self.hosts.contains_key(obs.host) && self.hosts.len() >= cfg.max_hosts {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        let images = self.hosts.entry(obs.host.to_owned()).or_default();
        let image = obs.image.to_ascii_lowercase();
        if !images.contains_key(&image) && images.len() >= cfg.max_images_per_host {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        let profile = images.entry(image).or_default();
        let cap = cfg.max_entries_per_image;
        let mut dropped = 0u64;
        let mut put = |set: &mut BTreeSet<String>, v: String| {
            if set.contains(&v) {
                return;
            }
            if set.len() >= cap {
                dropped = dropped.saturating_add(1);
            } else {
                set.insert(v);
            }
        };
        for m in &obs.crypto_modules {
            put(&mut profile.crypto_modules, module_key(m));
        }
        if let Some(d) = &obs.destination {
            put(&mut profile.destinations, d.clone());
        }
        if let Some(j) = obs.ja4 {
            put(&mut profile.ja4, j.to_owned());
        }
        self.dropped = self.dropped.saturating_add(dropped);
    }

    /// The departures of `obs` from the baseline, one reason each; empty when the image
    /// behaves as learned. An image never seen on that host is itself a departure.
    pub fn departures(&self, obs: &Observation<'_>) -> Departures {
        let mut d = Departures::default();
        let Some(profile) = self
            .hosts
            .get(obs.host)
            .and_then(|i| i.get(&obs.image.to_ascii_lowercase()))
        else {
            d.new_image = true;
            d.reasons.push(format!(
                "baseline: image {} never seen on host {}",
                obs.image, obs.host
            ));
            return d;
        };
        for m in &obs.crypto_modules {
            let k = module_key(m);
            if !profile.crypto_modules.contains(&k) {
                d.new_module = true;
                d.reasons
                    .push(format!("baseline: new crypto module {k} for this image"));
            }
        }
        if let Some(dest) = &obs.destination
            && !profile.destinations.contains(dest)
        {
            d.new_destination = true;
            d.reasons
                .push(format!("baseline: new destination {dest} for this image"));
        }
        if let Some(j) = obs.ja4
            && !profile.ja4.contains(j)
        {
            d.new_ja4 = true;
            d.reasons.push(format!(
                "baseline: JA4 {j} never sent by this image on this host"
            ));
        }
        d
    }
}

/// Departures of one observation from the baseline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Departures {
    /// The image was never seen on this host.
    pub new_image: bool,
    /// A crypto module not learned for this image.
    pub new_module: bool,
    /// A destination not learned for this image.
    pub new_destination: bool,
    /// A JA4 not learned for this image.
    pub new_ja4: bool,
    /// One line per departure.
    pub reasons: Vec<String>,
}

impl Departures {
    /// Score contribution (noisy-or input): 0.15 per kind of departure, 0.4 for a new JA4.
    pub fn score(&self) -> f32 {
        let mut s = Vec::new();
        for (flag, w) in [
            (self.new_image, 0.15f32),
            (self.new_module, 0.15),
            (self.new_destination, 0.15),
            (self.new_ja4, 0.4),
        ] {
            if flag {
                s.push(w);
            }
        }
        crate::detect::score::noisy_or(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs<'a>(dest: &str, ja4: Option<&'a str>) -> Observation<'a> {
        Observation {
            host: "ws-17",
            image: "/usr/bin/python3",
            crypto_modules: vec!["/usr/lib/x86_64-linux-gnu/libcrypto.so.3"],
            destination: Some(dest.to_owned()),
            ja4,
        }
    }

    #[test]
    fn learned_behaviour_has_no_departures_and_new_destination_does() {
        let cfg = BaselineConfig::default();
        let mut b = Baseline::default();
        b.learn(&cfg, &obs("198.51.100.10:443", Some("t13d")));
        assert!(
            b.departures(&obs("198.51.100.10:443", Some("t13d")))
                .reasons
                .is_empty()
        );
        let d = b.departures(&obs("203.0.113.9:4444", Some("t12x")));
        assert!(d.new_destination && d.new_ja4 && !d.new_module);
        assert!(d.score() > 0.4);
    }

    #[test]
    fn learn_stops_at_entry_cap_and_counts_drops() {
        let cfg = BaselineConfig {
            max_entries_per_image: 2,
            ..BaselineConfig::default()
        };
        let mut b = Baseline::default();
        for p in 0..5u16 {
            b.learn(&cfg, &obs(&format!("10.0.0.1:{p}"), None));
        }
        let prof = &b.hosts["ws-17"]["/usr/bin/python3"];
        assert_eq!(prof.destinations.len(), 2);
        assert_eq!(b.dropped, 3);
    }

    #[test]
    fn save_then_load_round_trips_and_bad_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("b.json");
        let mut b = Baseline::default();
        b.learn(&BaselineConfig::default(), &obs("10.0.0.1:1", Some("j")));
        b.save(&path).expect("save");
        assert_eq!(Baseline::load(&path).expect("load"), b);
        std::fs::write(&path, "[1,2").expect("write");
        assert!(matches!(
            Baseline::load(&path),
            Err(BaselineError::Json { .. })
        ));
    }
}
