//! Platform strings (`linux/arm64/v8`), parsed and normalized with containerd's rules so
//! that `aarch64`, `arm64` and `arm64/v8` compare equal.

use std::fmt;
use std::str::FromStr;

/// A normalized platform: two that mean the same target compare equal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    /// `linux`, `windows`, … (`macos` becomes `darwin`).
    pub os: String,
    /// `amd64`, `arm64`, … (`x86_64` becomes `amd64`, `aarch64` `arm64`).
    pub architecture: String,
    /// `v7`, `v8`, …; `None` where the architecture's default variant was given.
    pub variant: Option<String>,
}

/// A platform string that does not name a known target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a platform ({why}); expected os/arch[/variant], e.g. linux/arm64")]
pub struct PlatformError {
    /// The string as given (or its normalized `os/arch`).
    pub input: String,
    /// What is wrong with it.
    pub why: &'static str,
}

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "illumos",
    "ios",
    "js",
    "linux",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
];

const KNOWN_ARCH: &[&str] = &[
    "386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64",
    "ppc64le", "riscv64", "s390x", "wasm",
];

fn normalize_os(os: &str) -> String {
    let os = os.to_ascii_lowercase();
    match os.as_str() {
        "macos" => "darwin".into(),
        _ => os,
    }
}

/// containerd's `normalizeArch`.
fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.map(|v| v.to_ascii_lowercase());
    match arch.as_str() {
        "i386" | "i686" | "x86" => ("386".into(), None),
        "x86_64" | "x86-64" | "amd64" => {
            // amd64/v1 is the baseline and the same platform as plain amd64.
            let v = variant.filter(|v| v != "v1");
            ("amd64".into(), v)
        }
        "aarch64" | "arm64" => {
            let v = match variant.as_deref() {
                Some("8") | Some("v8") | None => None,
                Some(_) => variant,
            };
            ("arm64".into(), v)
        }
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => {
            let v = match variant.as_deref() {
                None | Some("7") | Some("v7") => "v7",
                Some("5") | Some("v5") => "v5",
                Some("6") | Some("v6") => "v6",
                Some("8") | Some("v8") => "v8",
                Some(other) => return ("arm".into(), Some(other.to_owned())),
            };
            ("arm".into(), Some(v.into()))
        }
        _ => (arch, variant),
    }
}

impl Platform {
    /// Normalizes and checks the parts against the operating systems and architectures
    /// Go (and so BuildKit) knows.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Result<Self, PlatformError> {
        let os = normalize_os(os);
        let (architecture, variant) =
            normalize_arch(architecture, variant.filter(|v| !v.is_empty()));
        let raw = || format!("{os}/{architecture}");
        if !KNOWN_OS.contains(&os.as_str()) {
            return Err(PlatformError {
                input: raw(),
                why: "unknown operating system",
            });
        }
        if !KNOWN_ARCH.contains(&architecture.as_str()) {
            return Err(PlatformError {
                input: raw(),
                why: "unknown architecture",
            });
        }
        Ok(Platform {
            os,
            architecture,
            variant,
        })
    }

    /// `unknown/unknown`: how an index lists an attestation manifest, which is no platform.
    pub fn is_unknown_attestation(os: &str, arch: &str) -> bool {
        os == "unknown" && arch == "unknown"
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| PlatformError {
            input: s.to_owned(),
            why,
        };
        let parts: Vec<&str> = s.trim().split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(err("empty component"));
        }
        let p = match parts.as_slice() {
            // A bare architecture (containerd accepts it) means Linux.
            [arch] if KNOWN_OS.contains(&arch.to_ascii_lowercase().as_str()) => {
                return Err(err("no architecture"))
            }
            [arch] => Platform::new("linux", arch, None),
            [os, arch] => Platform::new(os, arch, None),
            [os, arch, variant] => Platform::new(os, arch, Some(variant)),
            _ => return Err(err("too many components")),
        };
        p.map_err(|e| PlatformError {
            input: s.to_owned(),
            why: e.why,
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Normalizes a platform string; the canonical text of a valid platform.
pub fn normalize(s: &str) -> Result<String, PlatformError> {
    s.parse::<Platform>().map(|p| p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_aliases() {
        for (input, want) in [
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm64", "linux/arm64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/amd64", "linux/amd64"),
            ("linux/amd64/v1", "linux/amd64"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/armel", "linux/arm/v6"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/7", "linux/arm/v7"),
            ("Linux/ARM64", "linux/arm64"),
            ("arm64", "linux/arm64"),
            ("linux/i386", "linux/386"),
            ("windows/amd64", "windows/amd64"),
        ] {
            assert_eq!(normalize(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn bad_platforms_say_why() {
        for (input, why) in [
            ("", "empty component"),
            ("linux/", "empty component"),
            ("linux", "no architecture"),
            ("linux/sparc", "unknown architecture"),
            ("beos/amd64", "unknown operating system"),
            ("linux/arm64/v8/x", "too many components"),
        ] {
            let e = normalize(input).unwrap_err();
            assert_eq!(e.why, why, "{input}");
            assert!(e.to_string().contains(input), "{e}");
        }
    }

    #[test]
    fn sorted_order_is_stable() {
        let mut v: Vec<Platform> = ["linux/arm64", "linux/amd64", "linux/arm/v7"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        v.sort();
        let s: Vec<String> = v.iter().map(|p| p.to_string()).collect();
        assert_eq!(s, ["linux/amd64", "linux/arm/v7", "linux/arm64"]);
    }
}
