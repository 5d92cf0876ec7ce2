//! Transport `dir` (to be implemented).

use crate::image::{Error, ImageReference, Result};

/// Parse the part after the transport prefix.
pub fn parse_reference(within: &str) -> Result<Box<dyn ImageReference>> {
    Err(Error::Unsupported(format!(
        "transport dir is not implemented yet: {within}"
    )))
}
