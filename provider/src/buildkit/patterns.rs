//! Path patterns with the semantics BuildKit's file sender applies to the
//! `include-patterns` / `exclude-patterns` it receives (moby/patternmatcher):
//! `*`, `?`, `[...]`, `\` escapes, `**` for any number of directories, a
//! leading `!` for an exception, and a pattern matching a directory matches
//! everything below it.

use regex::Regex;

#[derive(Debug)]
enum Kind {
    Exact,
    /// `prefix**`
    Prefix(String),
    /// `**suffix`
    Suffix(String),
    Regex(Regex),
}

#[derive(Debug)]
pub(crate) struct Pattern {
    cleaned: String,
    exclusion: bool,
    kind: Kind,
}

impl Pattern {
    pub(crate) fn exclusion(&self) -> bool {
        self.exclusion
    }

    /// The pattern without a trailing `/**` or `/*` (fsutil's
    /// `patternWithoutTrailingGlob`).
    pub(crate) fn without_trailing_glob(&self) -> &str {
        let p = self.cleaned.as_str();
        let p = p.strip_suffix("/**").unwrap_or(p);
        p.strip_suffix("/*").unwrap_or(p)
    }

    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str()) || (suffix.starts_with('/') && path == &suffix[1..])
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }

    fn compile(cleaned: String, exclusion: bool) -> Result<Self, String> {
        #[derive(PartialEq)]
        enum Detected {
            Exact,
            Prefix,
            Suffix,
            Regex,
        }
        let mut re = String::from("^");
        let mut detected = Detected::Exact;
        let chars: Vec<char> = cleaned.chars().collect();
        let mut pos = 0;
        let mut i = 0;
        let mut in_class = false;
        while pos < chars.len() {
            let ch = chars[pos];
            pos += 1;
            let peek = chars.get(pos).copied();
            match ch {
                '*' if peek == Some('*') => {
                    pos += 1;
                    if chars.get(pos) == Some(&'/') {
                        pos += 1;
                    }
                    if pos >= chars.len() {
                        if detected == Detected::Exact {
                            detected = Detected::Prefix;
                        } else {
                            re.push_str(".*");
                            detected = Detected::Regex;
                        }
                    } else {
                        re.push_str("(.*/)?");
                        detected = Detected::Regex;
                    }
                    if i == 0 {
                        detected = Detected::Suffix;
                    }
                }
                '*' => {
                    re.push_str("[^/]*");
                    detected = Detected::Regex;
                }
                '?' => {
                    re.push_str("[^/]");
                    detected = Detected::Regex;
                }
                '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                    re.push('\\');
                    re.push(ch);
                }
                '\\' => {
                    if let Some(next) = peek {
                        pos += 1;
                        re.push_str(&regex::escape(&next.to_string()));
                        detected = Detected::Regex;
                    } else {
                        re.push_str("\\\\");
                    }
                }
                '[' | ']' => {
                    in_class = ch == '[';
                    re.push(ch);
                    detected = Detected::Regex;
                }
                _ if in_class => re.push(ch),
                _ => re.push_str(&regex::escape(&ch.to_string())),
            }
            i += 1;
        }
        let kind = match detected {
            Detected::Exact => Kind::Exact,
            Detected::Prefix => Kind::Prefix(cleaned[..cleaned.len() - 2].to_string()),
            Detected::Suffix => Kind::Suffix(cleaned[2..].to_string()),
            Detected::Regex => {
                re.push('$');
                Kind::Regex(Regex::new(&re).map_err(|e| format!("bad pattern {cleaned:?}: {e}"))?)
            }
        };
        Ok(Pattern {
            cleaned,
            exclusion,
            kind,
        })
    }
}

/// Per-pattern results for a directory, handed down to its children.
#[derive(Debug, Clone, Default)]
pub(crate) struct MatchInfo(Vec<bool>);

#[derive(Debug)]
pub(crate) struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl PatternMatcher {
    pub(crate) fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, String> {
        let mut out = Vec::new();
        let mut exclusions = false;
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let p = clean_path(p);
            let (p, exclusion) = match p.strip_prefix('!') {
                Some("") => return Err("illegal exclusion pattern: \"!\"".into()),
                Some(rest) => (rest.to_string(), true),
                None => (p, false),
            };
            exclusions |= exclusion;
            out.push(Pattern::compile(p, exclusion)?);
        }
        Ok(PatternMatcher {
            patterns: out,
            exclusions,
        })
    }

    pub(crate) fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    pub(crate) fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// `MatchesUsingParentResults`: `path` is slash-separated and relative.
    pub(crate) fn matches_using_parent(&self, path: &str, parent: &MatchInfo) -> (bool, MatchInfo) {
        let parent = &parent.0;
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut m = parent.get(i).copied().unwrap_or(false);
            if !m {
                if pattern.exclusion != matched {
                    continue;
                }
                m = pattern.matches(path);
                if !m && parent.is_empty() {
                    m = parent_prefixes(path).any(|prefix| pattern.matches(prefix));
                }
            }
            info[i] = m;
            if m {
                matched = !pattern.exclusion;
            }
        }
        (matched, MatchInfo(info))
    }

    /// `MatchesOrParentMatches`.
    pub(crate) fn matches_or_parent_matches(&self, path: &str) -> bool {
        self.matches_using_parent(path, &MatchInfo::default()).0
    }
}

/// "a/b/c" -> "a", "a/b" (the proper parent directories, shortest first).
fn parent_prefixes(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// Go's `path.Clean` for slash-separated paths.
pub(crate) fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Whether a single path component contains pattern syntax.
pub(crate) fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(patterns: &[&str], path: &str) -> bool {
        PatternMatcher::new(patterns)
            .unwrap()
            .matches_or_parent_matches(path)
    }

    #[test]
    fn clean() {
        assert_eq!(clean_path("a//b/./c/"), "a/b/c");
        assert_eq!(clean_path("./x/../y"), "y");
        assert_eq!(clean_path("/../a"), "/a");
        assert_eq!(clean_path("../a"), "../a");
        assert_eq!(clean_path("!foo/"), "!foo");
    }

    #[test]
    fn docker_semantics() {
        assert!(m(&["node_modules"], "node_modules/x/y.js"));
        assert!(m(&["*.md"], "README.md"));
        assert!(!m(&["*.md"], "docs/README.md"));
        assert!(m(&["**/*.md"], "docs/README.md"));
        assert!(m(&["**/*.md"], "README.md"));
        assert!(m(&["docs/**"], "docs/a/b"));
        assert!(m(&["**/tmp"], "tmp"));
        assert!(m(&["**/tmp"], "a/b/tmp/x"));
        assert!(m(&["a/**/b"], "a/b"));
        assert!(m(&["a/**/b"], "a/x/y/b"));
        assert!(m(&["fil?.txt"], "file.txt"));
        assert!(!m(&["fil?.txt"], "fil/.txt"));
        assert!(m(&["[a-c].txt"], "b.txt"));
        assert!(!m(&["[a-c].txt"], "d.txt"));
        assert!(m(&["a.b"], "a.b"));
        assert!(!m(&["a.b"], "axb"));
        assert!(m(&["*", "!keep"], "drop"));
        assert!(!m(&["*", "!keep"], "keep"));
        assert!(!m(&["*", "!keep"], "keep/inner"));
        assert!(m(&["*", "!keep", "keep/secret"], "keep/secret"));
        assert!(m(&["[^a]x"], "bx"));
        assert!(!m(&["[^a]x"], "ax"));
    }

    #[test]
    fn parent_results() {
        let pm = PatternMatcher::new(&["dir", "!dir/keep"]).unwrap();
        let (d, info) = pm.matches_using_parent("dir", &MatchInfo::default());
        assert!(d);
        let (f, _) = pm.matches_using_parent("dir/file", &info);
        assert!(f);
        let (k, _) = pm.matches_using_parent("dir/keep", &info);
        assert!(!k);
    }
}
