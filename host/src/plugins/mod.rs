//! Plugins as operators manage them: manifests and grants, the upgrade guard, the version
//! registry (every build kept by digest, validated before it can run) and deployments (which
//! version runs where, with history for rollback).
//!
//! This module turns configuration and uploaded components into runnable plugins and decides
//! which version runs where; it does not route or deliver.

pub mod deploy;
pub mod guard;
pub mod manifest;
pub mod registry;
pub mod slot;
