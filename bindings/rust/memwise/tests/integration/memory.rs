//! The engine's memory report (mw_engine_memory) reaches Rust intact.
use memwise::Request;

use crate::common::*;

#[test]
fn memory_report() {
    let Some(model) = open_stories() else { return };
    let info = model.info().unwrap();
    let engine = engine(&model, 2, 256);
    let req = Request { temperature: 0.0, max_tokens: 8, ..Request::new("Once upon a time") };
    engine.generate(&req).unwrap().read_all().unwrap();
    let m = engine.memory().unwrap();
    assert!(m.weights_mapped_bytes >= info.weight_bytes, "{m:?}");
    // Resident is counted in whole pages.
    assert!(m.weights_resident_bytes <= m.weights_mapped_bytes.next_multiple_of(1 << 16), "{m:?}");
    assert!(m.kv_reserved_bytes > 0, "{m:?}");
    assert!(m.kv_used_bytes + m.kv_cached_bytes + m.kv_free_bytes <= m.kv_reserved_bytes, "{m:?}");
    assert!(m.activations_high_water_bytes > 0, "a step ran: {m:?}");
    assert!(m.engine_total_bytes >= m.kv_resident_bytes + m.activations_high_water_bytes, "{m:?}");
    if cfg!(target_os = "linux") {
        assert!(m.process_rss_bytes > 0, "{m:?}");
    }
}
