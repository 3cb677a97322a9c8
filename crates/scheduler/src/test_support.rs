//! What the scheduler's unit tests share: putting data into a test workspace.

use tiercare_engine::RecordKind;
use tiercare_store::Store;

use crate::ingest::{ImportRequest, import_file};
use crate::workspace::Workspace;

/// Imports `text` as a `kind` CSV file (strict, the workspace's timezone) into `store`, through
/// the same path as `tiercare import`; panics on any error.
pub(crate) fn import(workspace: &Workspace, store: &mut Store, kind: RecordKind, text: &str) {
    let file = workspace.root().join(format!("{kind}.csv"));
    std::fs::write(&file, text).unwrap();
    let request = ImportRequest {
        kind,
        file: &file,
        mapping: None,
        strict: true,
        format: None,
        timezone: workspace.config().timezone,
        default_region: workspace.config().import.default_region.as_deref(),
    };
    import_file(store, &request, &mut |_| {}).unwrap();
}
