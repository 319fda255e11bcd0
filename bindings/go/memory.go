package memwise

/*
#include <memwise/memwise.h>
*/
import "C"

// MemoryReport says where the engine's memory goes, in bytes ("resident"
// means in RAM now). See mw_memory_report in memwise.h.
type MemoryReport struct {
	WeightsMapped, WeightsResident                              uint64
	KVReserved, KVResident, KVUsed, KVCached, KVFree            uint64
	ActivationsReserved, ActivationsHighWater                   uint64
	Scratch, HeapCommitted, HeapOverhead, HeapAllocations       uint64
	EngineTotal                                                 uint64
	ProcessRSS, ProcessPSS, ProcessAnonymous, ProcessFileBacked uint64
}

// Memory reports the engine's memory by component (mw_engine_memory).
func (e *Engine) Memory() (MemoryReport, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h == nil {
		return MemoryReport{}, closedErr("Memory")
	}
	var r C.mw_memory_report
	r.struct_size = C.uint32_t(C.sizeof_mw_memory_report)
	if err := call("mw_engine_memory", func() C.mw_status { return C.mw_engine_memory(e.h, &r) }); err != nil {
		return MemoryReport{}, err
	}
	return MemoryReport{
		WeightsMapped: uint64(r.weights_mapped_bytes), WeightsResident: uint64(r.weights_resident_bytes),
		KVReserved: uint64(r.kv_reserved_bytes), KVResident: uint64(r.kv_resident_bytes),
		KVUsed: uint64(r.kv_used_bytes), KVCached: uint64(r.kv_cached_bytes), KVFree: uint64(r.kv_free_bytes),
		ActivationsReserved:  uint64(r.activations_reserved_bytes),
		ActivationsHighWater: uint64(r.activations_high_water_bytes),
		Scratch:              uint64(r.scratch_bytes), HeapCommitted: uint64(r.heap_committed_bytes),
		HeapOverhead: uint64(r.heap_overhead_bytes), HeapAllocations: uint64(r.heap_allocations),
		EngineTotal: uint64(r.engine_total_bytes),
		ProcessRSS:  uint64(r.process_rss_bytes), ProcessPSS: uint64(r.process_pss_bytes),
		ProcessAnonymous: uint64(r.process_anonymous_bytes), ProcessFileBacked: uint64(r.process_file_bytes),
	}, nil
}
