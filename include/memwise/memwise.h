/*
 * memwise.h - the one public header of libmemwise.
 *
 * memwise is a memory-frugal LLM inference engine. A program opens a GGUF model
 * (memory-mapped, weights used in place), creates an engine over it, submits
 * requests and pulls generated tokens as events.
 *
 * Rules that hold for every function below (see docs/C-API.md):
 *  - Every fallible call returns mw_status: MW_OK (0) on success, a negative
 *    MW_ERR_* code on failure, a positive code for a non-error outcome
 *    (MW_TIMEOUT). Codes are never renumbered.
 *  - On failure, mw_last_error() returns a thread-local, human-readable detail
 *    of the last failure on the calling thread.
 *  - Handles are opaque. Each has one create and one destroy function; destroy
 *    functions accept NULL.
 *  - Option structs start with `uint32_t struct_size`; fill them with the
 *    matching mw_*_options_init() first. New fields are only ever appended.
 *  - Text crosses the boundary as bytes + length. A token piece may end inside
 *    a UTF-8 character, so it is never assumed to be NUL-terminated or complete
 *    (the engine's own events hold bytes back until a character completes).
 *  - Threading: an mw_model is immutable and may be shared by any number of
 *    threads and engines; an mw_engine may be called from any number of threads;
 *    an mw_request is used by one consumer thread at a time.
 *
 * C99. Compiles with -std=c99 -Wall -Wextra -pedantic.
 */
#ifndef MEMWISE_H
#define MEMWISE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MW_BUILDING_LIBRARY) && defined(__GNUC__)
#define MW_API __attribute__((visibility("default")))
#else
#define MW_API
#endif

/* ------------------------------------------------------------------------ */
/* Version                                                                   */
/* ------------------------------------------------------------------------ */

#define MW_VERSION_MAJOR 0
#define MW_VERSION_MINOR 1
#define MW_VERSION_PATCH 0
#define MW_VERSION_NUMBER (MW_VERSION_MAJOR * 10000 + MW_VERSION_MINOR * 100 + MW_VERSION_PATCH)
#define MW_VERSION_STRING "0.1.0"

/* Returns MW_VERSION_NUMBER of the library actually loaded (may differ from
 * the header the caller compiled against). */
MW_API unsigned mw_version(void);
/* Returns the library's version as a static NUL-terminated string. */
MW_API const char* mw_version_string(void);

/* ------------------------------------------------------------------------ */
/* Status codes (stable values)                                              */
/* ------------------------------------------------------------------------ */

typedef enum mw_status {
    MW_OK = 0,
    MW_TIMEOUT = 1,                 /* mw_request_next: no event within the timeout */

    MW_ERR_INVALID_ARGUMENT = -1,   /* NULL handle, bad value, bad token id, released handle */
    MW_ERR_FORMAT = -2,             /* malformed model file */
    MW_ERR_UNSUPPORTED = -3,        /* valid but unsupported: architecture, tensor type, chat template */
    MW_ERR_IO = -4,                 /* open/mmap/read/write failed */
    MW_ERR_OUT_OF_MEMORY = -5,      /* an allocation failed */
    MW_ERR_BUDGET = -6,             /* does not fit the memory budget */
    MW_ERR_CONTEXT_OVERFLOW = -7,   /* prompt (plus generation) longer than the context */
    MW_ERR_BUFFER_TOO_SMALL = -8,   /* output buffer too small; the needed size is reported */
    MW_ERR_CANCELLED = -9,          /* the request was cancelled */
    MW_ERR_STATE = -10,             /* call not valid in the object's current state */
    MW_ERR_INTERNAL = -11           /* a bug in memwise; please report it */
} mw_status;

/* Returns a static, NUL-terminated name for a status code ("MW_ERR_FORMAT").
 * Unknown codes give "MW_ERR_UNKNOWN". Never NULL. */
MW_API const char* mw_status_string(mw_status status);

/* Returns the detail message of the last failed call on the calling thread
 * (for example "tensor blk.3.attn_q.weight: data offset 812 beyond end of file
 * (size 640)"), or "" when there is none. The string is owned by the library
 * and valid until the next memwise call on the same thread. Never NULL. */
MW_API const char* mw_last_error(void);

/* ------------------------------------------------------------------------ */
/* Model                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct mw_model mw_model;

typedef enum mw_access_hint {
    MW_ACCESS_DEFAULT = 0,      /* let the kernel decide */
    MW_ACCESS_RANDOM = 1,       /* madvise(MADV_RANDOM): no read-ahead */
    MW_ACCESS_SEQUENTIAL = 2,   /* madvise(MADV_SEQUENTIAL): aggressive read-ahead */
    MW_ACCESS_WILLNEED = 3      /* madvise(MADV_WILLNEED): start reading the whole file now */
} mw_access_hint;

typedef struct mw_model_options {
    uint32_t struct_size;   /* sizeof(mw_model_options) */
    int32_t prefault;       /* 1: populate: read every weight page at open (MAP_POPULATE). Default 0. */
    int32_t lock;           /* 1: mlock the weights so they are never paged out. MW_ERR_IO with the
                               limit in the message when RLIMIT_MEMLOCK forbids it. Default 0. */
    int32_t access_hint;    /* mw_access_hint. Default MW_ACCESS_DEFAULT. */
    const char* cache_dir;  /* where a .gguf.zst model is decompressed to (a content-addressed
                               file, reused by later opens); NULL = $XDG_CACHE_HOME/memwise
                               or ~/.cache/memwise. */
} mw_model_options;

/* Fills *opts with defaults, including struct_size. */
MW_API void mw_model_options_init(mw_model_options* opts);

/* Opens a GGUF model file. The file is memory-mapped read-only and weights are
 * used in place (nothing is copied). opts may be NULL for defaults.
 * On success *out_model owns the model; close it with mw_model_close().
 * Errors: MW_ERR_INVALID_ARGUMENT (NULL path/out), MW_ERR_IO (cannot open or map,
 * a directory), MW_ERR_FORMAT (malformed file; mw_last_error names the field and
 * byte offset), MW_ERR_UNSUPPORTED (architecture or tensor type).
 * Thread-safe. */
MW_API mw_status mw_model_open(const char* path, const mw_model_options* opts, mw_model** out_model);

/* Releases the caller's reference. Engines created on the model keep it alive:
 * the memory is released when the last engine using it is destroyed (like
 * sqlite3_close_v2). Accepts NULL. */
MW_API void mw_model_close(mw_model* model);

typedef struct mw_model_info {
    uint32_t struct_size;       /* set by the caller to sizeof(mw_model_info) */
    char architecture[32];      /* "llama", "qwen2" (NUL-terminated, truncated if longer) */
    char name[96];              /* general.name, or "" */
    uint32_t gguf_version;
    uint32_t n_vocab;
    uint32_t n_ctx_train;       /* context length the model was trained for */
    uint32_t n_embd;
    uint32_t n_layer;
    uint32_t n_head;            /* layer 0 */
    uint32_t n_head_kv;         /* layer 0 */
    uint32_t n_ff;              /* layer 0 */
    uint32_t head_dim;
    uint64_t n_params;          /* number of weight elements */
    uint64_t file_bytes;        /* size of the model file */
    uint64_t weight_bytes;      /* bytes of tensor data */
    int32_t bos_token;          /* -1 if none */
    int32_t eos_token;          /* -1 if none */
    int32_t eot_token;          /* end-of-turn token, -1 if none */
    uint32_t kv_bytes_per_token;/* KV cache bytes one token costs at the default KV type (F16) */
    int32_t add_bos;            /* 1 if the tokenizer adds BOS to text prompts */
    char tokenizer_model[16];   /* "gpt2" (byte-level BPE) or "llama" (SentencePiece) */
    char tokenizer_pre[32];     /* BPE pre-tokenizer name ("smollm", "llama-bpe"), or "" */
    char chat_template[16];     /* recognised template: "chatml", "llama2", "llama3", "mistral", "" */
    char file_type[16];         /* dominant weight type, e.g. "Q4_1" */
} mw_model_info;

/* Fills *info. The caller sets info->struct_size; only fields that fit in
 * struct_size are written. Errors: MW_ERR_INVALID_ARGUMENT. */
MW_API mw_status mw_model_info_get(const mw_model* model, mw_model_info* info);

typedef struct mw_tensor_info {
    uint32_t struct_size;       /* set by the caller to sizeof(mw_tensor_info) */
    const char* name;           /* NUL-terminated; owned by the model, valid while it is open */
    char type_name[16];         /* "Q4_K", "F32", ... */
    uint32_t n_dims;
    uint64_t ne[4];             /* ne[0] is the contiguous dimension; unused dims are 1 */
    uint64_t n_bytes;
    uint64_t file_offset;       /* absolute byte offset of the data in the file */
} mw_tensor_info;

/* Number of tensors in the model file. 0 for NULL. */
MW_API size_t mw_model_tensor_count(const mw_model* model);
/* Describes tensor `index` (0-based, file order). MW_ERR_INVALID_ARGUMENT when out of range. */
MW_API mw_status mw_model_tensor_info(const mw_model* model, size_t index, mw_tensor_info* info);

/* ------------------------------------------------------------------------ */
/* Tokenizer and chat templates                                              */
/* ------------------------------------------------------------------------ */

/* Tokenizes text[0..text_len). add_special: add BOS/EOS as the model's metadata
 * says. parse_special: recognise special tokens written as text ("<|im_start|>").
 * Writes at most `capacity` ids to tokens (may be NULL when capacity is 0) and
 * always sets *n_tokens to the number of tokens of the whole text. Returns
 * MW_ERR_BUFFER_TOO_SMALL when capacity < *n_tokens. Thread-safe. */
MW_API mw_status mw_tokenize(const mw_model* model, const char* text, size_t text_len,
                             int add_special, int parse_special,
                             int32_t* tokens, size_t capacity, size_t* n_tokens);

/* Converts token ids back to UTF-8 bytes (special tokens rendered as their
 * text when render_special is 1, skipped when 0). Writes at most capacity bytes
 * (no NUL terminator) and always sets *text_len to the full length; returns
 * MW_ERR_BUFFER_TOO_SMALL when it did not fit. MW_ERR_INVALID_ARGUMENT for a
 * token id outside [0, n_vocab). Thread-safe. */
MW_API mw_status mw_detokenize(const mw_model* model, const int32_t* tokens, size_t n_tokens,
                               int render_special, char* text, size_t capacity, size_t* text_len);

typedef struct mw_chat_message {
    const char* role;       /* "system", "user", "assistant" */
    size_t role_len;
    const char* content;
    size_t content_len;
} mw_chat_message;

/* Formats messages with the model's chat template (tokenizer.chat_template).
 * Recognised: ChatML, Llama-2, Llama-3, Mistral. add_generation_prompt: append
 * the assistant header. Output as in mw_detokenize (bytes, *text_len always
 * set, MW_ERR_BUFFER_TOO_SMALL). MW_ERR_UNSUPPORTED when the model has no
 * template or one memwise does not recognise (pass raw text instead). */
MW_API mw_status mw_chat_format(const mw_model* model, const mw_chat_message* messages, size_t n_messages,
                                int add_generation_prompt, char* text, size_t capacity, size_t* text_len);

/* ------------------------------------------------------------------------ */
/* Engine                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct mw_engine mw_engine;

typedef enum mw_kv_type {
    MW_KV_F16 = 0,  /* default */
    MW_KV_F32 = 1,  /* exact; for tests */
    MW_KV_Q8_0 = 2  /* 8-bit blocks of 32 with an F16 scale: about half of F16 */
} mw_kv_type;

/* What the engine does when KV blocks run out while sequences are generating:
 * the most recently admitted sequence is preempted and resumes later with
 * exactly the output it would have produced. */
typedef enum mw_preempt_mode {
    MW_PREEMPT_RECOMPUTE = 0,   /* default: free its blocks; re-prefill it on resume */
    MW_PREEMPT_SPILL = 1        /* write its blocks zstd-compressed to a file in spill_dir,
                                   read them back on resume (recompute if that fails) */
} mw_preempt_mode;

/* Where an engine runs its forward steps. */
typedef enum mw_backend {
    MW_BACKEND_CPU = 0,     /* default */
    MW_BACKEND_CUDA = 1,    /* an NVIDIA GPU: MW_ERR_UNSUPPORTED (with the reason) when the
                               library was built without CUDA or no driver/device is present */
    MW_BACKEND_AUTO = 2     /* CUDA when available, else the CPU */
} mw_backend;

/* 1 when engines can be created with this backend in this process (for CUDA:
 * the library was built with it and a device is present), else 0. Thread-safe. */
MW_API int mw_backend_available(int32_t backend);

typedef struct mw_engine_options {
    uint32_t struct_size;           /* sizeof(mw_engine_options) */
    uint32_t n_threads;             /* compute threads; 0 = number of physical cores */
    uint32_t n_ctx;                 /* max tokens (prompt + generated) per sequence;
                                       0 = min(model's training context, 4096) */
    uint32_t max_sequences;         /* sequences held at once; default 1 */
    uint32_t kv_block_tokens;       /* tokens per KV block; default 16 */
    int32_t kv_type;                /* mw_kv_type; default MW_KV_F16 */
    uint32_t max_batch_tokens;      /* tokens per forward step (prefill chunk); default 512 */
    uint64_t memory_budget_bytes;   /* 0 = whatever max_sequences full-context sequences need */
    int32_t prefix_cache;           /* 1 (default): full prompt blocks are shared between sequences
                                       and kept (LRU) after they finish; 0: off */
    int32_t preempt_mode;           /* mw_preempt_mode; default MW_PREEMPT_RECOMPUTE */
    const char* spill_dir;          /* MW_PREEMPT_SPILL: directory for spill files (copied);
                                       NULL = $TMPDIR or /tmp */
    int32_t backend;                /* mw_backend; default MW_BACKEND_CPU. With CUDA,
                                       memory_budget_bytes bounds device memory for KV and
                                       step buffers; the weights are uploaded on top of it */
    int32_t cuda_device;            /* CUDA device ordinal; default 0 */
    int32_t release_host_weights;   /* CUDA: 1 = after the upload, drop the weights' pages
                                       from this process's RAM (they stay file-backed: a CPU
                                       engine on the same model reads them back in); default 0 */
} mw_engine_options;

MW_API void mw_engine_options_init(mw_engine_options* opts);

/* Creates an engine over model (which it keeps alive). Starts the engine's
 * threads. opts may be NULL. Errors: MW_ERR_INVALID_ARGUMENT, MW_ERR_BUDGET
 * (the message says the smallest budget that would work), MW_ERR_OUT_OF_MEMORY. */
MW_API mw_status mw_engine_create(mw_model* model, const mw_engine_options* opts, mw_engine** out_engine);

/* Where the engine's memory goes. Byte counts; "resident" means in RAM now. */
#define MW_MEMORY_REPORT_VERSION 1
typedef struct mw_memory_report {
    uint32_t struct_size;               /* set by the caller to sizeof(mw_memory_report) */
    uint32_t version;                   /* MW_MEMORY_REPORT_VERSION */
    /* weights: file-backed, shared with every process mapping the same file */
    uint64_t weights_mapped_bytes;      /* size of the mapping */
    uint64_t weights_resident_bytes;    /* pages of it in RAM (mincore) */
    /* KV cache: one pool of blocks */
    uint64_t kv_reserved_bytes;         /* address space of the pool */
    uint64_t kv_resident_bytes;         /* pool pages in RAM (touched so far) */
    uint64_t kv_used_bytes;             /* blocks held by sequences */
    uint64_t kv_cached_bytes;           /* blocks holding reusable prefixes, no owner */
    uint64_t kv_free_bytes;             /* blocks free */
    /* activations: the step arena */
    uint64_t activations_reserved_bytes;
    uint64_t activations_high_water_bytes; /* most ever touched by one step (resident) */
    /* scratch: sampling, request and scheduler state (the engine heap's live
       bytes) plus the model's tokenizer tables */
    uint64_t scratch_bytes;
    /* the general heap (mimalloc, or the system allocator in a comparison
       build). mimalloc's figures cover every memwise engine in the process. */
    uint64_t heap_committed_bytes;      /* address space the heap has committed (not all touched) */
    uint64_t heap_overhead_bytes;       /* committed minus what the engine's objects use now */
    /* the engine's own anonymous memory in RAM: kv_resident + activations_high_water
       + the heap's peak live bytes + the tokenizer tables. The test suite checks
       it against the process's anonymous memory growth (within 10% + 4 MiB). */
    uint64_t engine_total_bytes;
    /* the whole process, from /proc/self/smaps_rollup (0 where unavailable) */
    uint64_t process_rss_bytes;
    uint64_t process_pss_bytes;
    uint64_t process_anonymous_bytes;
    uint64_t process_file_bytes;
    uint64_t heap_allocations;          /* allocations the engine heap has made so far */
    /* LoRA adapters used by this engine's requests and still open or in use.
       Not part of engine_total: like the weights, an adapter is shared by
       every engine that uses it. */
    uint64_t adapters_mapped_bytes;     /* F32/F16 matrices used in place from the adapter files */
    uint64_t adapters_anonymous_bytes;  /* matrices dequantized to F32 in memory */
    /* device memory (CUDA backend; 0 on the CPU). Device KV and step buffers
       are not part of engine_total_bytes, which counts host RAM. */
    uint64_t device_weights_bytes;      /* weights uploaded to the device */
    uint64_t device_kv_bytes;           /* the device KV block pool (kv_used/free say how full) */
    uint64_t device_activations_bytes;  /* step buffers */
    uint64_t device_workspace_bytes;    /* GEMM workspace and dequantized weight tiles */
    uint64_t device_total_bytes;        /* all of the above */
} mw_memory_report;

/* Fills *report (the caller sets report->struct_size). Thread-safe; costs a
 * few system calls (mincore, /proc). Errors: MW_ERR_INVALID_ARGUMENT. */
MW_API mw_status mw_engine_memory(const mw_engine* engine, mw_memory_report* report);

/* What an engine with these options would allocate, computed without
 * allocating: the same plan mw_engine_create makes. */
typedef struct mw_engine_plan {
    uint32_t struct_size;           /* set by the caller to sizeof(mw_engine_plan) */
    uint32_t n_threads;
    uint32_t n_ctx;
    uint32_t max_sequences;
    uint32_t kv_block_tokens;
    uint32_t max_batch_tokens;
    uint32_t n_kv_blocks;
    uint64_t kv_block_bytes;
    uint64_t kv_bytes;              /* the KV pool (resident only as blocks are used) */
    uint64_t activation_bytes;      /* the step arena (resident up to the largest batch run);
                                       CUDA: device step buffers and GEMM workspace */
    int32_t backend;                /* mw_backend the engine would run on (AUTO resolved) */
} mw_engine_plan;

/* Fills *plan for engine options opts (NULL = defaults) on model. Errors as
 * mw_engine_create: MW_ERR_INVALID_ARGUMENT, MW_ERR_BUDGET (with the smallest
 * budget that works in the message). Thread-safe. */
MW_API mw_status mw_engine_plan_memory(const mw_model* model, const mw_engine_options* opts, mw_engine_plan* plan);

/* Serving counters and gauges, a consistent snapshot. */
typedef struct mw_stats {
    uint32_t struct_size;           /* set by the caller to sizeof(mw_stats) */
    uint32_t queued;                /* requests waiting for admission (including preempted ones) */
    uint32_t running;               /* sequences admitted: prefilling or decoding */
    uint32_t kv_blocks_total;
    uint32_t kv_blocks_used;        /* held by at least one sequence */
    uint32_t kv_blocks_cached;      /* no owner, holding a reusable prefix (reclaimed LRU first) */
    uint32_t kv_blocks_free;
    uint32_t reserved0;
    uint64_t requests_submitted;
    uint64_t requests_finished;     /* any finish reason */
    uint64_t steps;                 /* forward steps run */
    uint64_t prompt_tokens_computed;/* prompt tokens run through the model (cache hits excluded) */
    uint64_t generated_tokens;
    double prompt_tokens_per_second;    /* over the last 5 s of wall time */
    double generated_tokens_per_second; /* over the last 5 s of wall time */
    uint64_t prefix_cache_hits;     /* full prompt blocks found in the cache at admission */
    uint64_t prefix_cache_misses;   /* full prompt blocks that had to be computed */
    double prefix_cache_hit_rate;   /* hits / (hits + misses); 0 when none */
    uint64_t preemptions;           /* sequences preempted (either mode) */
    uint64_t spill_bytes_written;   /* compressed bytes written to spill files */
    uint64_t spill_failures;        /* spills or reloads that failed and fell back to recompute */
} mw_stats;

/* Fills *stats (the caller sets stats->struct_size). Thread-safe, cheap.
 * Errors: MW_ERR_INVALID_ARGUMENT. */
MW_API mw_status mw_engine_stats(const mw_engine* engine, mw_stats* stats);

/* Cancels every request still running, joins the engine's threads and frees
 * the engine. Requests not yet released stay valid handles that report
 * MW_FINISH_CANCELLED; release them as usual. Accepts NULL. */
MW_API void mw_engine_destroy(mw_engine* engine);

/* ------------------------------------------------------------------------ */
/* LoRA adapters                                                             */
/* ------------------------------------------------------------------------ */

/* A LoRA adapter in GGUF as llama.cpp writes it (general.type "adapter",
 * adapter.type "lora", adapter.lora.alpha; tensors <base tensor>.lora_a and
 * .lora_b). For each adapted weight W a request using it computes
 * W x + s * B (A x), with s = adapter_scale * alpha / rank (adapter_scale when
 * alpha is 0). The base weights are shared, never copied: any number of
 * adapters, and requests with and without one, run on one engine, even in the
 * same forward step. */
typedef struct mw_adapter mw_adapter;

/* Opens a LoRA adapter for `model` and validates it against it (architecture,
 * tensor names and shapes). F32/F16 matrices are used in place from the
 * memory-mapped file; other types are dequantized to F32 once, in memory.
 * The adapter keeps the model alive. On success *out_adapter is owned by the
 * caller; close it with mw_adapter_close().
 * Errors: MW_ERR_INVALID_ARGUMENT (NULL arguments; an adapter made for another
 * base model: the message names the tensor or architecture that differs),
 * MW_ERR_FORMAT (not a LoRA adapter: general.type or adapter.type wrong, a
 * lora_a without its lora_b, disagreeing ranks, a malformed file),
 * MW_ERR_UNSUPPORTED (an adapted token_embd on a model whose output head is
 * tied to it), MW_ERR_IO. Thread-safe. */
MW_API mw_status mw_adapter_open(const mw_model* model, const char* path, mw_adapter** out_adapter);

/* Releases the caller's reference. Requests that use the adapter keep it alive
 * until they finish, so closing it while they run is safe. Accepts NULL. */
MW_API void mw_adapter_close(mw_adapter* adapter);

typedef struct mw_adapter_info {
    uint32_t struct_size;       /* set by the caller to sizeof(mw_adapter_info) */
    float alpha;                /* adapter.lora.alpha (0 when absent) */
    uint32_t n_tensors;         /* base tensors adapted (lora_a/lora_b pairs) */
    uint32_t max_rank;
    uint64_t mapped_bytes;      /* F32/F16 matrices used in place from the file */
    uint64_t anonymous_bytes;   /* matrices dequantized to F32 at open */
} mw_adapter_info;

/* Fills *info (the caller sets info->struct_size). Errors: MW_ERR_INVALID_ARGUMENT. */
MW_API mw_status mw_adapter_info_get(const mw_adapter* adapter, mw_adapter_info* info);

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct mw_request mw_request;

typedef enum mw_event_kind {
    MW_EVENT_TOKEN = 1,     /* a generated token and the text it completes */
    MW_EVENT_FINISHED = 2   /* the request ended; see finish_reason and status */
} mw_event_kind;

typedef enum mw_finish_reason {
    MW_FINISH_NONE = 0,
    MW_FINISH_EOS = 1,          /* end-of-sequence or end-of-turn token */
    MW_FINISH_LENGTH = 2,       /* max_tokens reached */
    MW_FINISH_STOP_STRING = 3,  /* a stop string was generated (it is not emitted) */
    MW_FINISH_CONTEXT = 4,      /* the sequence filled the context */
    MW_FINISH_CANCELLED = 5,    /* mw_request_cancel or engine destroyed */
    MW_FINISH_ERROR = 6         /* see status and mw_event.text for the message */
} mw_finish_reason;

typedef struct mw_event {
    uint32_t struct_size;       /* set by the caller to sizeof(mw_event) */
    int32_t kind;               /* mw_event_kind */
    int32_t token;              /* MW_EVENT_TOKEN: the token id; otherwise -1 */
    const char* text;           /* bytes of text this event makes final (may be 0 bytes
                                   when held back for UTF-8 or a possible stop string);
                                   MW_FINISHED with an error: the message.
                                   Owned by the request; valid until the next
                                   mw_request_next or mw_request_release on it. */
    size_t text_len;
    int32_t finish_reason;      /* mw_finish_reason, for MW_EVENT_FINISHED */
    int32_t status;             /* mw_status of the request, for MW_EVENT_FINISHED */
    uint32_t n_prompt_tokens;
    uint32_t n_generated_tokens;
} mw_event;

/* Called on an engine thread for every event of the request, in order. It
 * must return quickly and must not call mw_request_release on its own request.
 * event and its text are valid only during the call. */
typedef void (*mw_event_callback)(void* user_data, const mw_request* request, const mw_event* event);

typedef struct mw_text {
    const char* data;
    size_t len;
} mw_text;

#define MW_SEED_RANDOM UINT64_MAX

typedef struct mw_request_options {
    uint32_t struct_size;           /* sizeof(mw_request_options) */
    /* The prompt: either text (prompt, prompt_len) or token ids
       (prompt_tokens, n_prompt_tokens); exactly one must be given. */
    const char* prompt;
    size_t prompt_len;
    const int32_t* prompt_tokens;
    size_t n_prompt_tokens;
    int32_t add_special;            /* text prompts: add BOS etc. per metadata; default 1 */
    int32_t parse_special;          /* text prompts: parse "<|im_start|>" etc.; default 1 */
    uint32_t max_tokens;            /* tokens to generate; default 256; 0 = until the context is full */
    float temperature;              /* 0 = greedy; default 0.8; must be >= 0 */
    int32_t top_k;                  /* 0 = off; default 40 */
    float top_p;                    /* (0, 1]; 1 = off; default 0.95 */
    float min_p;                    /* [0, 1]; 0 = off; default 0.05 */
    float repeat_penalty;           /* > 0; 1 = off; default 1.0 */
    int32_t repeat_last_n;          /* tokens the penalty looks back over; default 64 */
    uint64_t seed;                  /* MW_SEED_RANDOM (default) or a fixed seed */
    const mw_text* stop;            /* stop strings (copied at submit); may be NULL */
    size_t n_stop;
    int32_t ignore_eos;             /* 1: do not stop at EOS/EOT; default 0 */
    int32_t priority;               /* in [-1000, 1000]; higher is admitted first; a waiting
                                       request gains one level per 10 ms (no starvation); default 0 */
    mw_event_callback callback;     /* optional; see mw_event_callback */
    void* user_data;                /* passed to callback */
    const mw_adapter* adapter;      /* LoRA adapter to run with, opened on the engine's model;
                                       NULL (default) = the base model. Kept alive by the request.
                                       CPU engines only (CUDA: MW_ERR_UNSUPPORTED at submit). */
    float adapter_scale;            /* the adapter's user scale (finite); default 1.0; 0 = no adapter */
} mw_request_options;

MW_API void mw_request_options_init(mw_request_options* opts);

/* Submits a request. Copies everything it needs from opts. On success
 * *out_request is a handle owned by the caller; release it with
 * mw_request_release(). Errors (nothing is queued): MW_ERR_INVALID_ARGUMENT
 * (bad values, empty prompt, token id out of range, priority out of range),
 * MW_ERR_CONTEXT_OVERFLOW (prompt plus max_tokens longer than the engine's
 * context), MW_ERR_BUDGET (could never fit the whole KV pool), MW_ERR_STATE
 * (the engine is being destroyed).
 * Thread-safe: any number of threads may submit to one engine. */
MW_API mw_status mw_submit(mw_engine* engine, const mw_request_options* opts, mw_request** out_request);

/* Parallel sampling: submits n completions of one prompt as n ordinary
 * requests (written to out_requests[0..n)), each released on its own. The
 * prompt's KV blocks are computed once and shared; completions fork
 * copy-on-write. With a fixed seed, completion i samples with seed + i.
 * Errors as mw_submit, plus MW_ERR_INVALID_ARGUMENT for n == 0 or n above
 * the engine's max_sequences. On error nothing is queued and every
 * out_requests[i] is NULL. */
MW_API mw_status mw_submit_n(mw_engine* engine, const mw_request_options* opts, uint32_t n,
                             mw_request** out_requests);

/* Waits up to timeout_ms (negative = forever, 0 = poll) for the request's next
 * event and copies it to *event (the caller sets event->struct_size).
 * Returns MW_OK with an event, or MW_TIMEOUT. After the MW_EVENT_FINISHED event
 * has been returned, later calls return it again at once. With a callback set
 * at submit, token events go to the callback only and this call just waits for
 * the finish event. Not for concurrent use on one request. */
MW_API mw_status mw_request_next(mw_request* request, int32_t timeout_ms, mw_event* event);

/* Asks the engine to stop the request. Prompt: the request finishes with
 * MW_FINISH_CANCELLED within one forward step. Harmless on a finished
 * request. Thread-safe. */
MW_API mw_status mw_request_cancel(mw_request* request);

/* Cancels the request if it still runs and frees the handle. Accepts NULL.
 * Any later use of the handle returns MW_ERR_INVALID_ARGUMENT. */
MW_API void mw_request_release(mw_request* request);

/* ------------------------------------------------------------------------ */
/* Evaluation and distillation export                                        */
/* ------------------------------------------------------------------------ */

/* Window convention of mw_eval (llama.cpp's llama-perplexity): the text is
 * tokenized with BOS (as the model's metadata says; special tokens are not
 * parsed) and cut into n_tokens / n_ctx windows of n_ctx tokens, each run from
 * an empty KV cache with its first token replaced by BOS. Only the second half
 * of a window is scored: the predictions at positions n_ctx/2 .. n_ctx-2, each
 * with at least n_ctx/2 tokens of context.
 *
 * Distillation export (format 2) and mw_eval_export use overlapping windows
 * instead, so that every position of the token stream is exported: window 0
 * holds tokens 0 .. n_ctx-1 and scores all its predictions (positions
 * 0 .. n_ctx-2); window w > 0 starts at w * (n_ctx/2), or earlier so that the
 * last window ends at the last token, and scores only the positions no
 * earlier window scored (each with at least n_ctx/2 tokens of input, BOS
 * first). Every position 0 .. n_tokens-2 (predicting token p + 1) is scored
 * exactly once, in order. Distributions are the model's full softmax (no
 * sampling). See docs/COMPRESSION.md. */

/* The reference distribution in mw_eval. EXACT: its log-probabilities as
 * computed. LLAMA16: as llama.cpp's llama-perplexity stores a KL base
 * (--kl-divergence-base): per position, 16-bit steps between
 * max(min logit, max logit - 16) and the max; KL left out for tokens whose
 * stored log-probability is -16 nats or less; the reference's perplexity,
 * argmax and next-token probability from the stored values. For comparing
 * with llama.cpp's --kl-divergence figures number for number. */
typedef enum mw_eval_ref_base {
    MW_EVAL_REF_EXACT = 0,      /* default */
    MW_EVAL_REF_LLAMA16 = 1
} mw_eval_ref_base;

typedef struct mw_eval_options {
    uint32_t struct_size;   /* sizeof(mw_eval_options) */
    uint32_t n_ctx;         /* window length; 0 = 512, or the training context when smaller.
                               Against an export: 0 or the export's own. */
    uint32_t n_threads;     /* 0 = number of physical cores */
    uint32_t max_windows;   /* 0 = every full window of the text (against an export:
                               every window of the export); N = the first N */
    /* Optional: called on the calling thread after each window with the
       windows done and the windows in all (for progress reports). */
    void (*progress)(void* user_data, uint64_t done, uint64_t total);
    void* progress_user_data;
    /* How the reference model's distribution is taken (an mw_eval_ref_base);
       only with a reference model (an export refuses anything but EXACT). */
    uint32_t ref_base;
} mw_eval_options;

MW_API void mw_eval_options_init(mw_eval_options* opts);

typedef struct mw_eval_result {
    uint32_t struct_size;       /* set by the caller to sizeof(mw_eval_result) */
    uint32_t n_ctx;             /* window length used */
    uint64_t n_tokens;          /* tokens of the text (with BOS) */
    uint64_t n_windows;
    uint64_t n_scored;          /* predictions scored (mw_eval_export: export positions compared) */
    double nll_mean;            /* mean negative log-likelihood of the next token, nats */
    double perplexity;          /* exp(nll_mean) */
    /* With a reference (a model or an export); 0 otherwise. */
    int32_t has_ref;
    int32_t ref_is_export;      /* 1: KL is the top-K + remainder approximation (a lower bound) */
    double ref_perplexity;
    double ln_ppl_ratio;        /* ln(perplexity / ref_perplexity) */
    double kl_mean;             /* mean KL(ref || model), nats */
    double kl_p99;              /* 99th percentile of the per-position KL */
    double kl_max;
    double top1_agreement;      /* fraction of positions where both argmax tokens agree
                                   (llama.cpp's "Same top p") */
    double delta_p_rms;         /* RMS of p_model(next token) - p_ref(next token) */
    double ref_min_topk_mass;   /* export only: smallest probability mass its top K held */
    double seconds;             /* wall time of the evaluation */
} mw_eval_result;

/* Perplexity of model over text[0..text_len); with ref (NULL for none), also
 * the divergence of model's next-token distributions from ref's. ref must have
 * the same vocabulary (same tokenizer). opts may be NULL. Blocks until done;
 * uses n_threads threads of its own. Errors: MW_ERR_INVALID_ARGUMENT (NULL or
 * empty text, text shorter than one window, vocabularies differ, bad options),
 * MW_ERR_OUT_OF_MEMORY. Thread-safe (models are shared read-only). */
MW_API mw_status mw_eval(const mw_model* model, const mw_model* ref, const char* text, size_t text_len,
                         const mw_eval_options* opts, mw_eval_result* result);

/* Like mw_eval against a distillation export (mw_distill_export) instead of a
 * teacher model: the export's own windows and tokens are replayed through
 * model, so every position the export holds is compared once, with the
 * context the teacher had (not mw_eval's windows). KL uses the export's top K
 * plus one bucket for the remaining mass.
 * Errors: MW_ERR_IO (cannot open), MW_ERR_FORMAT (not an export, truncated,
 * corrupt), MW_ERR_INVALID_ARGUMENT (vocabulary differs from the teacher's,
 * n_ctx differs from the export's). */
MW_API mw_status mw_eval_export(const mw_model* model, const char* export_path, const mw_eval_options* opts,
                                mw_eval_result* result);

typedef struct mw_distill_options {
    uint32_t struct_size;       /* sizeof(mw_distill_options) */
    uint32_t n_ctx;             /* window length; 0 = as mw_eval */
    uint32_t n_threads;         /* 0 = number of physical cores */
    uint32_t max_windows;       /* 0 = every window (every position of the text); N = the first N */
    uint32_t top_k;             /* tokens kept per position, 1 .. min(n_vocab, 4096); default 32 */
    int32_t compression_level;  /* zstd level 1 .. 19; default 3 */
    void (*progress)(void* user_data, uint64_t done, uint64_t total);  /* as in mw_eval_options */
    void* progress_user_data;
} mw_distill_options;

MW_API void mw_distill_options_init(mw_distill_options* opts);

/* What an export file holds (its header). */
typedef struct mw_distill_info {
    uint32_t struct_size;       /* set by the caller to sizeof(mw_distill_info) */
    uint32_t version;           /* format version: 2 (written), or 1 (still read) */
    uint32_t n_vocab;
    uint32_t top_k;
    uint32_t n_ctx;             /* window length: no window holds more tokens */
    uint32_t first_scored;      /* version 1: first scored position of every window (n_ctx / 2);
                                   version 2: 0 (each window has its own; see mw_distill_record) */
    uint32_t n_scored;          /* version 1: scored positions per window; version 2: 0 */
    int32_t bos;                /* token put at each window's start, -1 for none */
    uint64_t n_windows;
    uint64_t n_records;         /* positions in the file; version 2: n_text_tokens - 1 when complete */
    uint64_t n_text_tokens;     /* tokens of the whole text */
    uint64_t vocab_hash;        /* identity of the teacher's vocabulary */
    uint64_t file_bytes;
    char architecture[32];      /* the teacher's (NUL-terminated) */
    char model_name[96];
    char tokenizer_model[16];
    char tokenizer_pre[32];
    uint32_t stride;            /* start step of windows: n_ctx / 2 (version 1: n_ctx) */
} mw_distill_info;

/* Runs teacher over text[0..text_len) and writes its top-K next-token
 * log-probabilities (and the remaining mass) at every position of the token
 * stream (windows above; a text shorter than n_ctx is one window) to
 * out_path: a zstd-compressed, streamable file (docs/COMPRESSION.md). The file
 * is written under a temporary name and renamed, so out_path never holds a
 * partial file. info (may be NULL) receives the header written. Errors:
 * MW_ERR_INVALID_ARGUMENT (empty text or fewer than 2 tokens, n_ctx, top_k or
 * level out of range), MW_ERR_IO (cannot write). Thread-safe. */
MW_API mw_status mw_distill_export(const mw_model* teacher, const char* text, size_t text_len, const char* out_path,
                                   const mw_distill_options* opts, mw_distill_info* info);

/* Streaming reader of an export file: one window in memory at a time. */
typedef struct mw_distill_reader mw_distill_reader;

/* One scored position. Pointers are owned by the reader and valid until the
 * next mw_distill_reader_next or mw_distill_reader_close on it. */
typedef struct mw_distill_record {
    uint32_t struct_size;       /* set by the caller to sizeof(mw_distill_record) */
    uint32_t top_k;
    uint64_t window;            /* window index */
    uint32_t position;          /* position in the window of the prediction */
    int32_t next_token;         /* the token that actually follows */
    float next_logprob;         /* its teacher log-probability */
    float rest_mass;            /* teacher probability outside the top K */
    const int32_t* ids;         /* top_k token ids, most probable first */
    const float* logprobs;      /* their teacher log-probabilities (natural log) */
    const int32_t* context;     /* the window's tokens 0 .. position: the model input */
    uint32_t n_context;         /* position + 1 */
    uint64_t window_start;      /* index in the text's token stream of the window's token 0 */
    uint64_t stream_position;   /* window_start + position: the prediction is of stream token
                                   stream_position + 1; version 2 files give 0, 1, 2, ... in order */
} mw_distill_record;

/* Opens an export and checks its header. Errors: MW_ERR_IO, MW_ERR_FORMAT.
 * Close with mw_distill_reader_close(). One thread at a time per reader. */
MW_API mw_status mw_distill_reader_open(const char* path, mw_distill_reader** out_reader);
/* Fills *info from the header (the caller sets info->struct_size). */
MW_API mw_status mw_distill_reader_info(const mw_distill_reader* reader, mw_distill_info* info);
/* Reads the next record in file order: *has_record = 1 and *record filled, or
 * *has_record = 0 at the end (after checking the file's trailer). Errors:
 * MW_ERR_FORMAT for a truncated or corrupt file (the reader then stays at its
 * error). */
MW_API mw_status mw_distill_reader_next(mw_distill_reader* reader, mw_distill_record* record, int32_t* has_record);
/* Closes the file and frees the reader. Accepts NULL. */
MW_API void mw_distill_reader_close(mw_distill_reader* reader);

/* ------------------------------------------------------------------------ */
/* Compression: quantization and structured pruning                          */
/* ------------------------------------------------------------------------ */

/* Both functions read a GGUF model file and write a new one under a temporary
 * name renamed into place: out_path never holds a partial file, also on
 * error. They block, use n_threads threads of their own, and are thread-safe.
 * See docs/COMPRESSION.md for the methods and measured results. */

typedef struct mw_quantize_options {
    uint32_t struct_size;       /* sizeof(mw_quantize_options) */
    const char* type;           /* target type: "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K",
                                   "Q5_K", "Q6_K", "F16", "BF16" or "F32" (case-insensitive). May be NULL
                                   when target_size or target_bpw is set. */
    const char* calib_path;     /* calibration text (UTF-8 file): importance-weighted
                                   quantization; NULL = plain round-to-nearest */
    uint32_t n_ctx;             /* calibration window; 0 = min(256, training context) */
    uint32_t calib_tokens;      /* tokens of the calibration text used; default 4096, 0 = all */
    uint64_t target_size;       /* mixed precision: output file size budget in bytes (0 = off) */
    double target_bpw;          /* mixed precision: bits per weight of the 2-D tensors (0 = off) */
    uint32_t sens_tokens;       /* mixed precision: tokens the sensitivity is measured on; default 512 */
    uint32_t n_threads;         /* 0 = hardware threads */
    /* Optional, called on the calling thread: progress(done, total) per
       tensor written, or in mixed precision per tensor whose sensitivity is
       measured (the slow part), and log(line) with one NUL-terminated line per tensor,
       sensitivity measurement, fallback and warning. */
    void (*progress)(void* user_data, uint64_t done, uint64_t total);
    void (*log)(void* user_data, const char* line);
    void* user_data;
    uint32_t plan_candidates;   /* mixed precision: how many candidate plans (best predicted
                                   first) have their whole-plan KL measured; the lowest measured
                                   is kept. Default (and 0) 8; 1 = the best predicted plan only */
    int32_t rtn_variants;       /* mixed precision: 1 = per tensor and type, also measure the
                                   round-to-nearest encoder and keep the better one (twice the
                                   sensitivity measurements); default 0 */
} mw_quantize_options;

MW_API void mw_quantize_options_init(mw_quantize_options* opts);

typedef struct mw_quantize_result {
    uint32_t struct_size;       /* set by the caller to sizeof(mw_quantize_result) */
    uint32_t n_tensors;         /* tensors written */
    uint32_t n_quantized;       /* 2-D tensors converted */
    uint32_t n_fallback;        /* tensors whose rows did not fit the target's block and got
                                   another type (named by the log callback) */
    int32_t requantized;        /* 1: the input was already quantized (errors add up) */
    int32_t mixed;              /* 1: mixed precision */
    uint64_t in_bytes;          /* input file size */
    uint64_t out_bytes;         /* output file size */
    uint64_t calib_tokens;      /* tokens the statistics came from (0: no calibration) */
    double predicted_kl;        /* mixed precision: sum of the per-tensor KL of the chosen types */
    double measured_kl;         /* mixed precision: KL of the chosen plan as a whole, measured on
                                   the sensitivity tokens of the calibration text */
} mw_quantize_result;

/* Quantizes every 2-D weight of in_path to opts->type (1-D tensors are copied)
 * and writes out_path. Rows whose width is not a multiple of the type's block
 * get the closest type that fits (Q4_K -> Q4_1 -> F16, Q5_K -> Q5_1 -> F16,
 * Q6_K -> Q8_0 -> F16, Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 -> F16), counted in n_fallback. With calib_path, block
 * scales minimise the error weighted by each input column's mean squared
 * activation on that text. With target_size or target_bpw (needs calib_path),
 * each tensor gets its own type under the budget, the most sensitive ones (by
 * measured KL) at higher precision: candidate plans are predicted from
 * per-tensor KL and the best plan_candidates of them measured as a whole, the
 * lowest measured KL kept. result may be NULL. Errors:
 * MW_ERR_INVALID_ARGUMENT (unknown type, no type and no budget, empty
 * calibration text, budget too small, out_path == in_path), MW_ERR_IO (cannot
 * read or write a file), MW_ERR_FORMAT (malformed model), MW_ERR_UNSUPPORTED
 * (architecture or input tensor type). */
MW_API mw_status mw_quantize(const char* in_path, const char* out_path, const mw_quantize_options* opts,
                             mw_quantize_result* result);

typedef struct mw_prune_options {
    uint32_t struct_size;       /* sizeof(mw_prune_options) */
    float ffn_keep;             /* fraction of FFN channels kept, in (0, 1]; default 1 */
    float heads_keep;           /* fraction of KV groups (with their query heads) kept, in (0, 1]; default 1 */
    const char* calib_path;     /* calibration text; required unless random */
    int32_t per_layer;          /* 1: layers keep different shares, chosen by the KL that pruning
                                   each layer alone causes (measured) under the same total */
    uint32_t round;             /* kept FFN widths are multiples of this; default 32 (256 for K-quants) */
    int32_t random;             /* 1: random ranking with seed (a baseline for comparisons) */
    uint64_t seed;
    uint32_t n_ctx;             /* calibration window; 0 = min(256, training context) */
    uint32_t calib_tokens;      /* default 4096, 0 = all */
    uint32_t sens_tokens;       /* per_layer: tokens each layer's sensitivity is measured on; default 512 */
    uint32_t n_threads;         /* 0 = hardware threads */
    void (*progress)(void* user_data, uint64_t done, uint64_t total);  /* calibration tokens */
    void (*log)(void* user_data, const char* line);                    /* one line per layer */
    void* user_data;
} mw_prune_options;

MW_API void mw_prune_options_init(mw_prune_options* opts);

typedef struct mw_prune_result {
    uint32_t struct_size;       /* set by the caller to sizeof(mw_prune_result) */
    uint32_t n_layer;
    uint64_t in_bytes, out_bytes;
    uint64_t params_in, params_out;
    uint64_t ffn_channels_in, ffn_channels_out;  /* summed over layers */
    uint64_t heads_in, heads_out;                /* query heads summed over layers */
    uint64_t calib_tokens;
} mw_prune_result;

/* Removes the least important FFN channels and KV groups of in_path (ranked by
 * their activation-weighted contribution to the residual stream on the
 * calibration text) and writes out_path with per-layer head counts and FFN
 * widths in its metadata; memwise loads and runs it. result may be NULL.
 * Errors: MW_ERR_INVALID_ARGUMENT (a fraction outside (0, 1], no or empty
 * calibration text, round 0, out_path == in_path), MW_ERR_IO, MW_ERR_FORMAT,
 * MW_ERR_UNSUPPORTED. */
MW_API mw_status mw_prune(const char* in_path, const char* out_path, const mw_prune_options* opts,
                          mw_prune_result* result);

#ifdef __cplusplus
}
#endif

#endif /* MEMWISE_H */
