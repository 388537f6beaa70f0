//! Text as it comes in: the one place every JSON body's strings, CSV cell and text field is
//! checked before a handler sees it.
//!
//! - [`Json`] and [`MaybeJson`] replace actix's `web::Json` on every route that takes a JSON
//!   body (the gate's hot path keeps actix's, its every field being parsed strictly: plate,
//!   colour, class, device event id). They refuse, with 422 `invalid_field` naming the field
//!   by its path (`windows[0].from`), any string — key or value — holding a control character
//!   or longer than [`JSON_STRING_CHARS_MAX`]; a body that is not JSON, or not of the shape
//!   asked for, is 400 `invalid_body` naming where it went wrong. `MaybeJson` is for routes
//!   whose body is optional: an empty body is "none", a malformed one is refused, never
//!   silently ignored.
//! - [`check_text`] is the same rule for one value (CSV cells, `validate::text`).
//!
//! Why refuse control characters rather than strip them: Postgres cannot store NUL in text
//! (it answered 500), the others have no business in a name, note or reason, and a value
//! changed behind the sender's back is worse than a clear refusal. Line breaks are control
//! characters too: no field of this API is multi-line.

use crate::error::ErrorCode;
use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Longest string anywhere in a JSON body. No field of the API needs more (the longest are
/// URLs, at most 2,048); tariffs are objects, and bulk data comes as CSV.
pub const JSON_STRING_CHARS_MAX: usize = 4_000;

/// Why a text value is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextError {
    ControlCharacter,
    TooLong { max_chars: usize },
}

impl std::fmt::Display for TextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TextError::ControlCharacter => f.write_str(
                "must not contain control or invisible characters (NUL, line breaks, tabs, \
                 bidi overrides, zero-width spaces, …)",
            ),
            TextError::TooLong { max_chars } => write!(f, "must be at most {max_chars} characters"),
        }
    }
}

/// Characters that are not text a person typed to be read: control characters (C0, C1, DEL),
/// line and paragraph separators, Unicode's format characters (bidi marks, overrides and
/// isolates, zero-width spaces and joiners, the soft hyphen, the word joiner, invisible
/// operators, a byte order mark, tags), characters that draw as nothing (the Hangul fillers,
/// the combining grapheme joiner, the blank braille pattern) and noncharacters. A bidi override
/// can make `=1+1` look harmless in a list, and a name of fillers looks blank. (Private-use
/// characters and variation selectors are allowed: Chinese names with rare characters use
/// them.)
pub fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Zl, Zp
            '\u{2028}' | '\u{2029}'
                // Cf (format)
                | '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
                // drawn as nothing
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{3164}'
                | '\u{FFA0}'
                | '\u{2800}'
                // noncharacters
                | '\u{FDD0}'..='\u{FDEF}'
        )
        || (u32::from(c) & 0xFFFE) == 0xFFFE
}

/// The rule every text value obeys: no [`is_forbidden`] character, at most `max_chars`
/// characters.
pub fn check_text(value: &str, max_chars: usize) -> Result<(), TextError> {
    if value.chars().any(is_forbidden) {
        return Err(TextError::ControlCharacter);
    }
    if value.chars().count() > max_chars {
        return Err(TextError::TooLong { max_chars });
    }
    Ok(())
}

/// The first string of `value` (object keys included) that breaks [`check_text`], with its
/// path.
fn first_bad_string(value: &serde_json::Value, path: &mut String) -> Option<(String, TextError)> {
    use serde_json::Value;
    match value {
        Value::String(text) => check_text(text, JSON_STRING_CHARS_MAX)
            .err()
            .map(|e| (path.clone(), e)),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = first_bad_string(item, path);
            path.truncate(len);
            found
        }),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            // A key is shown escaped: it may be the bad string itself.
            path.push_str(&key.escape_debug().to_string());
            let found = check_text(key, JSON_STRING_CHARS_MAX)
                .err()
                .map(|e| (path.clone(), e))
                .or_else(|| first_bad_string(item, path));
            path.truncate(len);
            found
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

/// A request body already parsed (by [`refuse_malformed_json`]), kept in the request's
/// extensions so that the extractor does not parse it again.
struct ParsedBody(serde_json::Value);

fn not_json(e: &serde_json::Error) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidBody, format!("not JSON: {e}"))
}

/// Parses a JSON body into `T` after checking every string in it; `parsed` is the body as a
/// value if it was parsed already.
fn parse<T: DeserializeOwned>(
    body: &[u8],
    parsed: Option<serde_json::Value>,
) -> Result<T, ApiError> {
    let value = match parsed {
        Some(value) => value,
        None => serde_json::from_slice(body).map_err(|e| not_json(&e))?,
    };
    if let Some((path, e)) = first_bad_string(&value, &mut String::new()) {
        let field = if path.is_empty() { "body" } else { &path };
        return Err(ApiError::invalid(
            ErrorCode::InvalidField,
            format!("{field}: {e}"),
        ));
    }
    // Deserialised from the bytes, not from `value`: amounts must not pass through a float.
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::bad_request(ErrorCode::InvalidBody, inner.to_string())
        } else {
            ApiError::bad_request(ErrorCode::InvalidBody, format!("{path}: {inner}"))
        }
    })
}

/// The body must say it is JSON, as actix's own extractor requires.
fn is_json(req: &HttpRequest) -> bool {
    match req.mime_type() {
        Ok(Some(mime)) => mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"),
        _ => false,
    }
}

type Extracted<T> = Pin<Box<dyn Future<Output = Result<T, actix_web::Error>>>>;

/// Largest JSON body accepted: gate events and admin objects are small. (Camera pushes with
/// inline images have their own, larger limit on their own routes:
/// [`crate::gate::vendors::VENDOR_BODY_BYTES_MAX`]; CSV imports theirs.)
pub const JSON_BODY_BYTES_MAX: usize = 64 * 1024;

/// Reads the body (at most [`JSON_BODY_BYTES_MAX`]) and parses it, or `None` if empty.
fn extract<T: DeserializeOwned + 'static>(
    req: &HttpRequest,
    payload: &mut actix_web::dev::Payload,
) -> Extracted<Option<T>> {
    use futures_util::StreamExt;
    let json = is_json(req);
    let parsed = req.extensions_mut().remove::<ParsedBody>().map(|p| p.0);
    let mut payload = payload.take();
    Box::pin(async move {
        let too_large = || ApiError::bad_request(ErrorCode::InvalidBody, "request body too large");
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk?;
            if body.len() + chunk.len() > JSON_BODY_BYTES_MAX {
                return Err(too_large().into());
            }
            body.extend_from_slice(&chunk);
        }
        if body.is_empty() {
            return Ok(None);
        }
        if !json {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidBody,
                "the body must be JSON (content-type: application/json)",
            )
            .into());
        }
        Ok(Some(parse(&body, parsed)?))
    })
}

/// A JSON body, every string in it checked (see the module).
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = Extracted<Json<T>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let body = extract::<T>(req, payload);
        Box::pin(async move {
            match body.await? {
                Some(value) => Ok(Json(value)),
                None => {
                    Err(ApiError::bad_request(ErrorCode::InvalidBody, "the body is empty").into())
                }
            }
        })
    }
}

/// An optional JSON body: empty is `None`; anything else must parse like [`Json`].
pub struct MaybeJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for MaybeJson<T> {
    type Error = actix_web::Error;
    type Future = Extracted<MaybeJson<T>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let body = extract::<T>(req, payload);
        Box::pin(async move { Ok(MaybeJson(body.await?)) })
    }
}

/// Paths whose JSON bodies are parsed strictly by their own handlers and are left alone here:
/// the gate's hot path, and camera pushes (larger, with inline images).
const OWN_PARSERS: [&str; 2] = ["/v1/gate/", "/v1/vendor/"];

/// Whether a request of `method` to `path` has a JSON body checked here (the OpenAPI document
/// lists the 400 this can answer by the same rule).
pub fn checks_json_body(method: &actix_web::http::Method, path: &str) -> bool {
    // The gate's and cameras' paths first: their reads pass here at every event, and the
    // prefix test is cheaper than parsing a content type.
    !OWN_PARSERS.iter().any(|p| path.starts_with(p))
        && !matches!(
            *method,
            actix_web::http::Method::GET | actix_web::http::Method::HEAD
        )
}

/// Every JSON body must parse, whether or not the route reads it: a write that takes no body
/// (a pause, a cancellation, a rebuild) with a malformed one is refused, not carried out as if
/// the body were absent. Wraps the whole app; the body is read once and handed on.
pub async fn refuse_malformed_json(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<
    actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>,
    actix_web::Error,
> {
    use futures_util::StreamExt;
    let checked = checks_json_body(req.method(), req.path()) && is_json(req.request());
    if checked {
        let mut payload = req.take_payload();
        let mut body = web::BytesMut::new();
        let mut refusal = None;
        while let Some(chunk) = payload.next().await {
            let chunk = chunk?;
            if body.len() + chunk.len() > JSON_BODY_BYTES_MAX {
                refusal = Some(ApiError::bad_request(
                    ErrorCode::InvalidBody,
                    "request body too large",
                ));
                break;
            }
            body.extend_from_slice(&chunk);
        }
        if refusal.is_none() && !body.is_empty() {
            match serde_json::from_slice::<serde_json::Value>(&body) {
                // Kept for the route's extractor, which checks its strings.
                Ok(value) => {
                    req.extensions_mut().insert(ParsedBody(value));
                }
                Err(e) => refusal = Some(not_json(&e)),
            }
        }
        if let Some(refusal) = refusal {
            let response = actix_web::ResponseError::error_response(&refusal);
            return Ok(req.into_response(response).map_into_right_body());
        }
        req.set_payload(actix_web::dev::Payload::from(body.freeze()));
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Any JSON value in the API document: an answer whose fields the operation's description
/// names.
pub struct AnyJson;

impl utoipa::PartialSchema for AnyJson {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
            .description(Some(
                "JSON; its fields are named in the operation's description",
            ))
            .into()
    }
}

impl utoipa::ToSchema for AnyJson {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[expect(dead_code, reason = "only parsed")]
    struct Body {
        name: String,
        windows: Vec<Window>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[expect(dead_code, reason = "only parsed")]
    struct Window {
        from: String,
    }

    fn message(body: &str) -> (&'static str, String) {
        match parse::<Body>(body.as_bytes(), None) {
            Ok(parsed) => panic!("accepted: {parsed:?}"),
            Err(e) => (e.code(), e.to_string()),
        }
    }

    #[test]
    fn control_characters_are_refused_naming_the_field() {
        for (body, field) in [
            (r#"{"name":"a\u0000b","windows":[]}"#, "name:"),
            (
                r#"{"name":"ok","windows":[{"from":"08:00\r"}]}"#,
                "windows[0].from:",
            ),
            (r#"{"name":"ok","windows":[],"x\u0007":1}"#, "x\\u{7}:"),
            (r#"{"name":"tab\there","windows":[]}"#, "name:"),
            (r#"{"name":"\u0085","windows":[]}"#, "name:"),
            (r#"{"name":"a\u2028b","windows":[]}"#, "name:"),
            (r#"{"name":"\u202e1+1=","windows":[]}"#, "name:"),
            (r#"{"name":"\u200b","windows":[]}"#, "name:"),
            (r#"{"name":"\ufeffx","windows":[]}"#, "name:"),
            (r#"{"name":"\uffff","windows":[]}"#, "name:"),
            (r#"{"name":"a\u061cb","windows":[]}"#, "name:"),
            (r#"{"name":"a\u00adb","windows":[]}"#, "name:"),
            (r#"{"name":"\u3164","windows":[]}"#, "name:"),
            (r#"{"name":"\u2800","windows":[]}"#, "name:"),
            (r#"{"name":"a\udb40\udc01","windows":[]}"#, "name:"),
        ] {
            let (code, text) = message(body);
            assert_eq!(code, "invalid_field", "{body}");
            assert!(text.starts_with(field), "{body}: {text}");
        }
    }

    #[test]
    fn overlong_strings_are_refused_and_ordinary_text_passes() {
        let long = "长".repeat(JSON_STRING_CHARS_MAX + 1);
        let (code, text) = message(&format!(r#"{{"name":"{long}","windows":[]}}"#));
        assert_eq!((code, text.starts_with("name:")), ("invalid_field", true));
        let ok = "阳光花园 3-1-402 (Bob's)".to_owned();
        assert!(parse::<Body>(
            format!(r#"{{"name":"{ok}","windows":[]}}"#).as_bytes(),
            None
        )
        .is_ok());
    }

    #[test]
    fn a_body_of_the_wrong_shape_names_where() {
        let (code, text) = message(r#"{"name":"x","windows":[{"from":5}]}"#);
        assert_eq!(code, "invalid_body");
        assert!(text.starts_with("windows[0].from:"), "{text}");
        let (code, _) = message(r#"{"label": 5, "junk": ["#);
        assert_eq!(code, "invalid_body");
    }
}
