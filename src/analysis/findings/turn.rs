//! TURN findings (RFC 8656): authentication, allocation failures, permissions, channels, relayed traffic.
use super::Finding;
use crate::analysis::Model;

pub fn findings(_model: &Model) -> Vec<Finding> {
    Vec::new()
}
