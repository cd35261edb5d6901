//! `[routes.auth]`: one basic, bearer or header credential a route requires.

use super::checker::Checker;
use super::file::AuthSection;
use crate::route::{Auth, Secret};

pub(super) fn auth(c: &mut Checker<'_>, at: &str, a: &AuthSection) -> Option<Auth> {
    let set = [a.basic.is_some(), a.bearer.is_some(), a.header.is_some()];
    if set.iter().filter(|&&b| b).count() != 1 {
        return c.fail(at, "must hold exactly one of basic, bearer, header");
    }
    if let Some(b) = &a.basic {
        if b.username.contains(':') {
            return c.fail(format!("{at}.basic.username"), "must not contain \":\"");
        }
        if b.password.is_empty() {
            return c.fail(format!("{at}.basic.password"), "must not be empty");
        }
        let pair = format!("{}:{}", b.username, b.password);
        return Some(Auth::Basic(Secret::new(pair.into_bytes())));
    }
    if let Some(token) = &a.bearer {
        if token.is_empty() {
            return c.fail(format!("{at}.bearer"), "must not be empty");
        }
        return Some(Auth::Bearer(Secret::new(token.as_bytes())));
    }
    let h = a.header.as_ref()?;
    let name = c.header_name(&format!("{at}.header.name"), &h.name)?;
    if h.value.is_empty() {
        return c.fail(format!("{at}.header.value"), "must not be empty");
    }
    Some(Auth::Header {
        name,
        value: Secret::new(h.value.as_bytes()),
    })
}
