//! `.dockerignore` patterns, as Docker and BuildKit apply them: a port of
//! moby/patternmatcher (`patternmatcher.New`, `MatchesUsingParentResults`,
//! `MatchesOrParentMatches`) and of `ignorefile.ReadAll`.
//!
//! * in an ignore file, one pattern a line; a line starting with `#` is a
//!   comment, blank lines are skipped;
//! * a leading `!` makes an exception that re-includes;
//! * patterns are cleaned like Go's `filepath.Clean` (so `./a`, `a/` and
//!   `a/./b/..` are `a`); in an ignore file a leading `/` is dropped too:
//!   they are relative to the context root;
//! * `*`, `?`, `[...]` and `\` escapes as in Go's `filepath.Match`, `**` for
//!   any number of directories; a pattern matching a directory matches
//!   everything below it; the last matching line wins.
//!
//! Where this differs from Docker: a pattern whose regex Go would reject
//! (e.g. `a\q`) fails when the patterns are parsed, not when first matched.
//!
//! Used by the build-context walk ([`crate::context`]) and by the file sync
//! that serves BuildKit's include/exclude patterns ([`crate::buildkit`]).

use std::fmt;

use regex::Regex;
use regex_automata::hybrid::dfa::{Cache as DfaCache, DFA};
use regex_automata::util::start::Config as StartConfig;
use regex_automata::Anchored;

/// A pattern that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// 1-based: the line of the ignore file, or the position in the list.
    pub line: usize,
    /// As written (trimmed).
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pattern {:?}: {}", self.pattern, self.reason)
    }
}

impl std::error::Error for PatternError {}

#[derive(Debug)]
enum Kind {
    /// The path equals the pattern.
    Exact,
    /// `lit**`: the path starts with `lit`.
    Prefix(String),
    /// `**rest` (with literal rest): the path ends with `rest`, or `rest` is
    /// `/path`.
    Suffix(String),
    Regex(Regex),
}

/// One parsed pattern.
#[derive(Debug)]
pub struct Pattern {
    cleaned: String,
    exception: bool,
    kind: Kind,
}

impl Pattern {
    /// The cleaned pattern, without its `!`.
    pub fn text(&self) -> &str {
        &self.cleaned
    }

    /// Whether it is an exception (`!`, patternmatcher's "exclusion").
    pub fn is_exception(&self) -> bool {
        self.exception
    }

    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }
}

/// Per-pattern results for a directory, handed down to its children
/// (patternmatcher's `MatchInfo`). The default means "no information": the
/// path's parent directories are then matched too.
#[derive(Debug, Clone, Default)]
pub struct MatchInfo(Vec<bool>);

/// Parsed patterns (patternmatcher's `PatternMatcher`).
#[derive(Debug)]
pub struct Patterns {
    patterns: Vec<Pattern>,
    has_exceptions: bool,
    /// One lazy DFA over the exceptions of `Kind::Regex`, to tell whether
    /// any of them can match below a directory.
    dfa: Option<DFA>,
    has_regex_exceptions: bool,
}

impl Patterns {
    /// `patternmatcher.New`: one pattern per item; blank items are skipped.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Patterns, PatternError> {
        let mut b = Builder::default();
        for (idx, p) in patterns.iter().enumerate() {
            let p = p.as_ref();
            b.add(p, idx + 1, p)?;
        }
        Ok(b.finish())
    }

    /// `ignorefile.ReadAll` then `patternmatcher.New`: the contents of an
    /// ignore file (`.dockerignore`).
    pub fn from_ignore_file(text: &str) -> Result<Patterns, PatternError> {
        let mut b = Builder::default();
        for (idx, raw) in text.split('\n').enumerate() {
            let mut line = raw.strip_suffix('\r').unwrap_or(raw);
            if idx == 0 {
                line = line.strip_prefix('\u{feff}').unwrap_or(line);
            }
            // Comments are recognised before trimming.
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            if p.is_empty() {
                continue;
            }
            let invert = p.starts_with('!');
            if invert {
                p = p[1..].trim();
            }
            let mut pat = String::new();
            if !p.is_empty() {
                pat = clean(p);
                if pat.len() > 1 && pat.starts_with('/') {
                    pat.remove(0);
                }
            }
            if invert {
                pat.insert(0, '!');
            }
            b.add(&pat, idx + 1, line)?;
        }
        Ok(b.finish())
    }

    /// The patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is an exception (`!`).
    pub fn has_exceptions(&self) -> bool {
        self.has_exceptions
    }

    /// `PatternMatcher.MatchesUsingParentResults`: whether `path`
    /// (`/`-separated, relative) is matched (excluded), given the results of
    /// its parent directory (`MatchInfo::default()` for a top-level path, or
    /// when unknown). `info` receives this path's results, for its children.
    pub fn matches(&self, path: &str, parent: &MatchInfo, info: &mut MatchInfo) -> bool {
        let parent = &parent.0;
        let info = &mut info.0;
        info.clear();
        info.resize(self.patterns.len(), false);
        let mut matched = false;
        for (i, p) in self.patterns.iter().enumerate() {
            let mut m = parent.get(i).copied().unwrap_or(false);
            if !m {
                // An exclusion can't change an already excluded path, nor an
                // exception an included one.
                if p.exception != matched {
                    continue;
                }
                m = p.matches(path);
                // Without the parent's results, try the parent directories
                // themselves (as `MatchesOrParentMatches` does).
                if !m && parent.is_empty() {
                    m = parent_dirs(path).any(|dir| p.matches(dir));
                }
            }
            info[i] = m;
            if m {
                matched = !p.exception;
            }
        }
        matched
    }

    /// `PatternMatcher.MatchesOrParentMatches`: whether `path` or one of its
    /// parent directories is matched.
    pub fn matches_or_parent_matches(&self, path: &str) -> bool {
        self.matches(path, &MatchInfo::default(), &mut MatchInfo::default())
    }

    /// Whether some exception could match a path strictly below the
    /// (excluded) directory `dir`. If none can, nothing below it can be
    /// re-included (a path only gains a match over its parent's results by
    /// matching a pattern itself), so a walk can skip it wholesale.
    pub fn could_reinclude_under(&self, dir: &str) -> bool {
        if !self.has_exceptions {
            return false;
        }
        let dir_slash = format!("{dir}/");
        for p in self.patterns.iter().filter(|p| p.exception) {
            match &p.kind {
                Kind::Exact => {
                    if p.cleaned.starts_with(&dir_slash) {
                        return true;
                    }
                }
                Kind::Prefix(prefix) => {
                    if prefix.starts_with(&dir_slash) || dir_slash.starts_with(prefix.as_str()) {
                        return true;
                    }
                }
                Kind::Suffix(_) => return true,
                Kind::Regex(_) => {}
            }
        }
        if !self.has_regex_exceptions {
            return false;
        }
        match &self.dfa {
            Some(dfa) => dfa_alive_after(dfa, &mut DfaCache::new(dfa), dir_slash.as_bytes()),
            None => true,
        }
    }
}

#[derive(Default)]
struct Builder {
    patterns: Vec<Pattern>,
    exception_regexes: Vec<String>,
}

impl Builder {
    /// One pattern of `patternmatcher.New`; `line` and `written` are for
    /// errors.
    fn add(&mut self, p: &str, line: usize, written: &str) -> Result<(), PatternError> {
        let p = p.trim();
        if p.is_empty() {
            return Ok(());
        }
        let err = |reason: String| PatternError {
            line,
            pattern: written.trim().to_string(),
            reason,
        };
        let pat = clean(p);
        let (exception, pat) = match pat.strip_prefix('!') {
            Some("") => return Err(err("illegal exclusion pattern: \"!\"".into())),
            Some(rest) => (true, rest.to_string()),
            None => (false, pat),
        };
        check_glob_syntax(&pat).map_err(|e| err(e.into()))?;
        let (kind, regex_src) = compile(&pat).map_err(err)?;
        if exception {
            if let Some(src) = regex_src {
                self.exception_regexes.push(src);
            }
        }
        self.patterns.push(Pattern {
            cleaned: pat,
            exception,
            kind,
        });
        Ok(())
    }

    fn finish(self) -> Patterns {
        let has_regex_exceptions = !self.exception_regexes.is_empty();
        let dfa = if has_regex_exceptions {
            DFA::builder()
                .configure(DFA::config().unicode_word_boundary(true))
                .build_many(&self.exception_regexes)
                .ok()
        } else {
            None
        };
        Patterns {
            has_exceptions: self.patterns.iter().any(|p| p.exception),
            patterns: self.patterns,
            dfa,
            has_regex_exceptions,
        }
    }
}

/// "a/b/c" -> "a", "a/b": the proper parent directories, shortest first.
fn parent_dirs(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// Whether a path component contains pattern syntax (`*`, `?`, `[`, `\`).
pub fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

/// Whether the anchored DFA, having read `prefix`, can still reach a match.
/// Any doubt (cache trouble, quit bytes) answers yes.
fn dfa_alive_after(dfa: &DFA, cache: &mut DfaCache, prefix: &[u8]) -> bool {
    let Ok(mut sid) = dfa.start_state(cache, &StartConfig::new().anchored(Anchored::Yes)) else {
        return true;
    };
    for &b in prefix {
        match dfa.next_state(cache, sid, b) {
            Ok(next) => sid = next,
            Err(_) => return true,
        }
        if sid.is_dead() {
            return false;
        }
        if sid.is_quit() {
            return true;
        }
    }
    true
}

/// Go's `filepath.Clean` (and `path.Clean`) for `/`-separated paths.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// The syntax errors Go's `filepath.Match` reports (`ErrBadPattern`), which
/// `patternmatcher.New` rejects: a trailing `\`, and malformed `[...]`
/// classes (unclosed, empty, a range missing an end).
fn check_glob_syntax(p: &str) -> Result<(), &'static str> {
    const BAD: &str = "syntax error in pattern";
    let c: Vec<char> = p.chars().collect();
    let mut i = 0;
    // getEsc: one (possibly escaped) class character, which must not be the
    // last of the pattern.
    let get_esc = |i: &mut usize| -> Result<(), &'static str> {
        match c.get(*i) {
            None | Some('-') | Some(']') => return Err(BAD),
            Some('\\') => {
                *i += 1;
                if *i >= c.len() {
                    return Err(BAD);
                }
            }
            _ => {}
        }
        *i += 1;
        if *i >= c.len() {
            return Err(BAD);
        }
        Ok(())
    };
    while i < c.len() {
        match c[i] {
            '\\' => {
                i += 1;
                if i >= c.len() {
                    return Err(BAD);
                }
                i += 1;
            }
            '[' => {
                i += 1;
                if c.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut nrange = 0;
                loop {
                    if c.get(i) == Some(&']') && nrange > 0 {
                        i += 1;
                        break;
                    }
                    get_esc(&mut i)?;
                    if c[i] == '-' {
                        i += 1;
                        get_esc(&mut i)?;
                    }
                    nrange += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// `Pattern.compile` of moby/patternmatcher (with `/` as separator). Returns
/// the match kind and, for `Kind::Regex`, the regex source.
fn compile(p: &str) -> Result<(Kind, Option<String>), String> {
    #[derive(PartialEq)]
    enum Ty {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let chars: Vec<char> = p.chars().collect();
    let mut re = String::from("^");
    let mut ty = Ty::Exact;
    let mut pos = 0;
    let mut i = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        match ch {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                // `**/` is `**`.
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos >= chars.len() {
                    // `**` at the end matches everything, like .gitignore.
                    if ty == Ty::Exact {
                        ty = Ty::Prefix;
                    } else {
                        re.push_str(".*");
                        ty = Ty::Regex;
                    }
                } else {
                    // Any number of directories, including none.
                    re.push_str("(.*/)?");
                    ty = Ty::Regex;
                }
                if i == 0 {
                    ty = Ty::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                ty = Ty::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                ty = Ty::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => {
                if pos < chars.len() {
                    re.push('\\');
                    re.push(chars[pos]);
                    pos += 1;
                    ty = Ty::Regex;
                } else {
                    re.push('\\');
                }
            }
            '[' | ']' => {
                re.push(ch);
                ty = Ty::Regex;
            }
            _ => re.push(ch),
        }
        i += 1;
    }
    let kind = match ty {
        Ty::Exact => return Ok((Kind::Exact, None)),
        Ty::Prefix => Kind::Prefix(p[..p.len() - 2].to_string()),
        Ty::Suffix => Kind::Suffix(p[2..].to_string()),
        Ty::Regex => {
            re.push('$');
            let src = go_regex_to_rust(&re);
            let compiled = Regex::new(&src).map_err(|e| e.to_string())?;
            return Ok((Kind::Regex(compiled), Some(src)));
        }
    };
    Ok((kind, None))
}

/// Rewrites a Go (RE2) regex as patternmatcher builds it into the Rust regex
/// that means the same: inside a class Go takes `[` (other than `[:`), `&`
/// and `~` literally where Rust nests classes or reads set operations, and
/// `\` + punctuation is always a literal in Go (`\<` is not a word boundary).
fn go_regex_to_rust(go: &str) -> String {
    let c: Vec<char> = go.chars().collect();
    let mut out = String::with_capacity(go.len() + 8);
    let mut i = 0;
    let push_escaped = |out: &mut String, ch: char| {
        if ch.is_ascii_punctuation() {
            out.push_str(&regex::escape(ch.encode_utf8(&mut [0; 4])));
        } else {
            out.push('\\');
            out.push(ch);
        }
    };
    while i < c.len() {
        match c[i] {
            '\\' if i + 1 < c.len() => {
                push_escaped(&mut out, c[i + 1]);
                i += 2;
            }
            ']' => {
                out.push_str("\\]");
                i += 1;
            }
            '[' => {
                out.push('[');
                i += 1;
                if c.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                let mut first = true;
                let mut prev_dash = false;
                while i < c.len() && (c[i] != ']' || first) {
                    first = false;
                    let ch = c[i];
                    if ch == '[' && c.get(i + 1) == Some(&':') {
                        // POSIX class `[:name:]`, the same in both.
                        if let Some(end) = (i + 2..c.len().saturating_sub(1))
                            .find(|&j| c[j] == ':' && c[j + 1] == ']')
                        {
                            out.extend(&c[i..end + 2]);
                            i = end + 2;
                            prev_dash = false;
                            continue;
                        }
                    }
                    match ch {
                        '\\' if i + 1 < c.len() => {
                            push_escaped(&mut out, c[i + 1]);
                            i += 2;
                            prev_dash = false;
                            continue;
                        }
                        '[' | '&' | '~' | ']' => {
                            out.push('\\');
                            out.push(ch);
                        }
                        '-' if prev_dash => out.push_str("\\-"),
                        _ => out.push(ch),
                    }
                    prev_dash = ch == '-';
                    i += 1;
                }
                if i < c.len() {
                    out.push(']');
                    i += 1;
                }
            }
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}
#[cfg(test)]
mod tests;
