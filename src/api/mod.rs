//! The custom resources (`kubemirror.dev`): plain data types, their CRD
//! schemas and the conditions they carry. No I/O here.

pub mod v1alpha1;
