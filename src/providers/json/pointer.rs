//! RFC 6901 pointers: their reference tokens, unescaped, and array indexes.

use std::borrow::Cow;

/// The reference tokens of a pointer: none for `""`, `None` when it does not start
/// with `/`.
pub(super) fn tokens(pointer: &str) -> Option<impl Iterator<Item = Cow<'_, str>>> {
    let rest = if pointer.is_empty() {
        None
    } else {
        Some(pointer.strip_prefix('/')?)
    };
    Some(rest.into_iter().flat_map(|r| r.split('/')).map(unescape))
}

/// One reference token as written (`~1` for `/`, `~0` for `~`), copied only when escaped.
pub(super) fn unescape(token: &str) -> Cow<'_, str> {
    // Bytes, not chars: `str::contains` builds a searcher, dearer than these few bytes.
    if token.as_bytes().contains(&b'~') {
        Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(token)
    }
}

/// An array index as RFC 6901 writes it: digits, no sign, no leading zero.
pub(super) fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() > 1) {
        return None;
    }
    token.parse().ok()
}

/// A pointer's first reference token, unescaped, and the pointer after it.
pub(super) fn split_first(pointer: &str) -> Option<(Cow<'_, str>, &str)> {
    let rest = pointer.strip_prefix('/')?;
    let slash = rest.as_bytes().iter().position(|&b| b == b'/');
    let (token, after) = slash.map_or((rest, ""), |i| rest.split_at(i));
    Some((unescape(token), after))
}
