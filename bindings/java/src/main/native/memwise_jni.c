/*
 * memwise_jni.c - the JNI glue between dev.memwise.Native and libmemwise.
 *
 * Rules this file keeps:
 *  - Natives are registered with RegisterNatives in JNI_OnLoad (no exported
 *    Java_* symbols); classes, constructors and field ids are looked up once
 *    there and kept as global references.
 *  - Every JNI call that can raise an exception is followed by a check, and a
 *    native method returns at once when one is pending.
 *  - Only the pull API (mw_request_next) is used: the engine's own threads
 *    never call into the JVM, so nothing here attaches threads.
 *  - Handles cross as jlong. Which handle may be used when (a closed model, a
 *    released request) is Java's job (dev.memwise.Resource); this file only
 *    translates.
 *  - Failures become dev.memwise.MemwiseException(status, detail); the detail
 *    crosses as bytes because mw_last_error() is UTF-8, not JNI's modified UTF-8.
 */
#include <jni.h>
#include <memwise/memwise.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PKG "dev/memwise/"

/* Everything cached by JNI_OnLoad. Classes are global references. */
static struct {
    jclass native_cls;
    jclass event_cls;
    jmethodID event_ctor;
    jclass exception_cls;
    jmethodID exception_from_native;
    jclass info_cls;
    jmethodID info_ctor;
    jclass byte_array_cls;
    jclass oom_cls;
    /* dev.memwise.Request fields */
    jclass request_cls;
    jfieldID rq_prompt, rq_prompt_tokens, rq_add_special, rq_parse_special, rq_max_tokens, rq_temperature,
        rq_top_k, rq_top_p, rq_min_p, rq_repeat_penalty, rq_repeat_last_n, rq_seed, rq_stop, rq_ignore_eos,
        rq_priority;
    /* dev.memwise.Engine$Options fields */
    jclass engine_opts_cls;
    jfieldID eo_n_threads, eo_n_ctx, eo_max_sequences, eo_kv_block_tokens, eo_kv_type, eo_max_batch_tokens,
        eo_memory_budget;
} g;

static jlong to_jlong(const void* p) { return (jlong)(intptr_t)p; }

/* ---- exceptions ---------------------------------------------------------- */

static jbyteArray new_bytes(JNIEnv* env, const char* data, size_t len) {
    jbyteArray arr;
    if (len > (size_t)INT32_MAX) {
        (*env)->ThrowNew(env, g.oom_cls, "memwise: byte string longer than a Java array");
        return NULL;
    }
    arr = (*env)->NewByteArray(env, (jsize)len);
    if (arr == NULL || (*env)->ExceptionCheck(env)) return NULL;
    if (len > 0) {
        (*env)->SetByteArrayRegion(env, arr, 0, (jsize)len, (const jbyte*)data);
        if ((*env)->ExceptionCheck(env)) return NULL;
    }
    return arr;
}

/* Throws MemwiseException(status, detail). Leaves an exception pending either
 * way (an OutOfMemoryError when even that could not be built). */
static void throw_status(JNIEnv* env, mw_status status, const char* detail) {
    jbyteArray msg;
    jobject ex;
    if ((*env)->ExceptionCheck(env)) return;
    msg = new_bytes(env, detail, strlen(detail));
    if (msg == NULL) return;
    ex = (*env)->CallStaticObjectMethod(env, g.exception_cls, g.exception_from_native, (jint)status, msg);
    (*env)->DeleteLocalRef(env, msg);
    if ((*env)->ExceptionCheck(env) || ex == NULL) return;
    (*env)->Throw(env, (jthrowable)ex);
    (*env)->DeleteLocalRef(env, ex);
}

/* Throws for a failed memwise call, with the thread's mw_last_error(). Call it
 * right after the failure: no memwise call may come in between. */
static void throw_last(JNIEnv* env, mw_status status) { throw_status(env, status, mw_last_error()); }

static void throw_oom(JNIEnv* env, const char* what) {
    if (!(*env)->ExceptionCheck(env)) (*env)->ThrowNew(env, g.oom_cls, what);
}

/* ---- Java arrays to C ---------------------------------------------------- */

/* Copies a byte[] into a new NUL-terminated C buffer (free it). NULL with an
 * exception pending on failure; *len gets the byte count. */
static char* copy_bytes(JNIEnv* env, jbyteArray arr, size_t* len) {
    jsize n;
    char* buf;
    n = (*env)->GetArrayLength(env, arr);
    if ((*env)->ExceptionCheck(env)) return NULL;
    buf = malloc((size_t)n + 1);
    if (buf == NULL) {
        throw_oom(env, "memwise: copying a byte array");
        return NULL;
    }
    (*env)->GetByteArrayRegion(env, arr, 0, n, (jbyte*)buf);
    if ((*env)->ExceptionCheck(env)) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

/* Copies an int[] into a new C array of int32_t (free it). */
static int32_t* copy_ints(JNIEnv* env, jintArray arr, size_t* len) {
    jsize n;
    int32_t* buf;
    n = (*env)->GetArrayLength(env, arr);
    if ((*env)->ExceptionCheck(env)) return NULL;
    buf = malloc(((size_t)n + 1) * sizeof *buf);
    if (buf == NULL) {
        throw_oom(env, "memwise: copying an int array");
        return NULL;
    }
    (*env)->GetIntArrayRegion(env, arr, 0, n, (jint*)buf);
    if ((*env)->ExceptionCheck(env)) {
        free(buf);
        return NULL;
    }
    *len = (size_t)n;
    return buf;
}

/* A byte[][] copied into C: one block of bytes plus (pointer, length) pairs. */
typedef struct byte_strings {
    size_t count;
    const char** data;
    size_t* len;
    char** owned; /* each element's own buffer */
} byte_strings;

static void byte_strings_free(byte_strings* s) {
    size_t i;
    if (s->owned)
        for (i = 0; i < s->count; i++) free(s->owned[i]);
    free(s->owned);
    free((void*)s->data);
    free(s->len);
    memset(s, 0, sizeof *s);
}

/* Copies arr (may be NULL: zero strings). Returns 0 on success, -1 with an
 * exception pending. A NULL element is an invalid argument. */
static int byte_strings_copy(JNIEnv* env, jobjectArray arr, const char* what, byte_strings* out) {
    jsize n, i;
    memset(out, 0, sizeof *out);
    if (arr == NULL) return 0;
    n = (*env)->GetArrayLength(env, arr);
    if ((*env)->ExceptionCheck(env)) return -1;
    out->data = calloc((size_t)n + 1, sizeof *out->data);
    out->len = calloc((size_t)n + 1, sizeof *out->len);
    out->owned = calloc((size_t)n + 1, sizeof *out->owned);
    if (!out->data || !out->len || !out->owned) {
        byte_strings_free(out);
        throw_oom(env, "memwise: copying byte strings");
        return -1;
    }
    for (i = 0; i < n; i++) {
        jbyteArray el = (jbyteArray)(*env)->GetObjectArrayElement(env, arr, i);
        if ((*env)->ExceptionCheck(env)) {
            byte_strings_free(out);
            return -1;
        }
        if (el == NULL) {
            byte_strings_free(out);
            throw_status(env, MW_ERR_INVALID_ARGUMENT, what);
            return -1;
        }
        out->owned[i] = copy_bytes(env, el, &out->len[i]);
        (*env)->DeleteLocalRef(env, el);
        out->count = (size_t)i + 1;
        if (out->owned[i] == NULL) {
            byte_strings_free(out);
            return -1;
        }
        out->data[i] = out->owned[i];
    }
    return 0;
}

/* ---- version and status -------------------------------------------------- */

static jint JNICALL n_version(JNIEnv* env, jclass cls) {
    (void)env;
    (void)cls;
    return (jint)mw_version();
}

static jstring JNICALL n_version_string(JNIEnv* env, jclass cls) {
    (void)cls;
    return (*env)->NewStringUTF(env, mw_version_string()); /* ASCII */
}

static jstring JNICALL n_status_string(JNIEnv* env, jclass cls, jint status) {
    (void)cls;
    return (*env)->NewStringUTF(env, mw_status_string((mw_status)status)); /* ASCII */
}

/* ---- model --------------------------------------------------------------- */

static jlong JNICALL n_model_open(JNIEnv* env, jclass cls, jbyteArray path, jboolean prefault) {
    mw_model_options opts;
    mw_model* model = NULL;
    mw_status st;
    size_t len = 0;
    char* cpath;
    (void)cls;
    cpath = copy_bytes(env, path, &len);
    if (cpath == NULL) return 0;
    mw_model_options_init(&opts);
    opts.prefault = prefault ? 1 : 0;
    st = mw_model_open(cpath, &opts, &model);
    free(cpath);
    if (st != MW_OK) {
        throw_last(env, st);
        return 0;
    }
    return to_jlong(model);
}

static void JNICALL n_model_close(JNIEnv* env, jclass cls, jlong model) {
    (void)env;
    (void)cls;
    mw_model_close((mw_model*)(intptr_t)model);
}

/* A NUL-terminated char array field as a byte[] without the padding. */
static jbyteArray field_bytes(JNIEnv* env, const char* field, size_t capacity) {
    size_t n = 0;
    while (n < capacity && field[n] != '\0') n++;
    return new_bytes(env, field, n);
}

static jobject JNICALL n_model_info(JNIEnv* env, jclass cls, jlong model) {
    mw_model_info info;
    mw_status st;
    jobjectArray strings = NULL;
    jintArray ints = NULL;
    jlongArray longs = NULL;
    jobject result = NULL;
    jint iv[14];
    jlong lv[3];
    const struct {
        const char* p;
        size_t cap;
    } sv[7] = {{info.architecture, sizeof info.architecture},
               {info.name, sizeof info.name},
               {info.tokenizer_model, sizeof info.tokenizer_model},
               {info.tokenizer_pre, sizeof info.tokenizer_pre},
               {info.chat_template, sizeof info.chat_template},
               {info.file_type, sizeof info.file_type},
               {NULL, 0}};
    int i;
    (void)cls;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    st = mw_model_info_get((const mw_model*)(intptr_t)model, &info);
    if (st != MW_OK) {
        throw_last(env, st);
        return NULL;
    }
    /* Order matches the ModelInfo(byte[][], int[], long[]) constructor. */
    iv[0] = (jint)info.gguf_version;
    iv[1] = (jint)info.n_vocab;
    iv[2] = (jint)info.n_ctx_train;
    iv[3] = (jint)info.n_embd;
    iv[4] = (jint)info.n_layer;
    iv[5] = (jint)info.n_head;
    iv[6] = (jint)info.n_head_kv;
    iv[7] = (jint)info.n_ff;
    iv[8] = (jint)info.head_dim;
    iv[9] = (jint)info.bos_token;
    iv[10] = (jint)info.eos_token;
    iv[11] = (jint)info.eot_token;
    iv[12] = (jint)info.kv_bytes_per_token;
    iv[13] = (jint)info.add_bos;
    lv[0] = (jlong)info.n_params;
    lv[1] = (jlong)info.file_bytes;
    lv[2] = (jlong)info.weight_bytes;

    strings = (*env)->NewObjectArray(env, 6, g.byte_array_cls, NULL);
    if (strings == NULL || (*env)->ExceptionCheck(env)) goto done;
    for (i = 0; sv[i].p != NULL; i++) {
        jbyteArray b = field_bytes(env, sv[i].p, sv[i].cap);
        if (b == NULL) goto done;
        (*env)->SetObjectArrayElement(env, strings, i, b);
        (*env)->DeleteLocalRef(env, b);
        if ((*env)->ExceptionCheck(env)) goto done;
    }
    ints = (*env)->NewIntArray(env, 14);
    if (ints == NULL || (*env)->ExceptionCheck(env)) goto done;
    (*env)->SetIntArrayRegion(env, ints, 0, 14, iv);
    if ((*env)->ExceptionCheck(env)) goto done;
    longs = (*env)->NewLongArray(env, 3);
    if (longs == NULL || (*env)->ExceptionCheck(env)) goto done;
    (*env)->SetLongArrayRegion(env, longs, 0, 3, lv);
    if ((*env)->ExceptionCheck(env)) goto done;
    result = (*env)->NewObject(env, g.info_cls, g.info_ctor, strings, ints, longs);
    if ((*env)->ExceptionCheck(env)) result = NULL;
done:
    if (strings) (*env)->DeleteLocalRef(env, strings);
    if (ints) (*env)->DeleteLocalRef(env, ints);
    if (longs) (*env)->DeleteLocalRef(env, longs);
    return result;
}

/* ---- tokenizer ----------------------------------------------------------- */

static jintArray JNICALL n_tokenize(JNIEnv* env, jclass cls, jlong model, jbyteArray text, jboolean add_special,
                                    jboolean parse_special) {
    const mw_model* m = (const mw_model*)(intptr_t)model;
    size_t len = 0, cap, n = 0;
    int32_t* ids = NULL;
    char* ctext;
    mw_status st;
    jintArray result = NULL;
    (void)cls;
    ctext = copy_bytes(env, text, &len);
    if (ctext == NULL) return NULL;
    /* Tokens rarely outnumber bytes; a second call gets the exact size if they do. */
    cap = len + 8;
    for (;;) {
        int32_t* grown = realloc(ids, cap * sizeof *ids);
        if (grown == NULL) {
            throw_oom(env, "memwise: token buffer");
            goto done;
        }
        ids = grown;
        st = mw_tokenize(m, ctext, len, add_special ? 1 : 0, parse_special ? 1 : 0, ids, cap, &n);
        if (st == MW_ERR_BUFFER_TOO_SMALL && n > cap) {
            cap = n;
            continue;
        }
        if (st != MW_OK) {
            throw_last(env, st);
            goto done;
        }
        break;
    }
    if (n > (size_t)INT32_MAX) {
        throw_oom(env, "memwise: more tokens than a Java array holds");
        goto done;
    }
    result = (*env)->NewIntArray(env, (jsize)n);
    if (result == NULL || (*env)->ExceptionCheck(env)) {
        result = NULL;
        goto done;
    }
    (*env)->SetIntArrayRegion(env, result, 0, (jsize)n, (const jint*)ids);
    if ((*env)->ExceptionCheck(env)) result = NULL;
done:
    free(ctext);
    free(ids);
    return result;
}

/* Text out of mw_detokenize / mw_chat_format: ask, grow once, return bytes. */
typedef mw_status (*text_producer)(const void* ctx, char* buf, size_t cap, size_t* len);

static jbyteArray produce_text(JNIEnv* env, text_producer produce, const void* ctx, size_t first_guess) {
    size_t cap = first_guess ? first_guess : 64, len = 0;
    char* buf = NULL;
    mw_status st;
    jbyteArray result = NULL;
    for (;;) {
        char* grown = realloc(buf, cap);
        if (grown == NULL) {
            throw_oom(env, "memwise: text buffer");
            goto done;
        }
        buf = grown;
        st = produce(ctx, buf, cap, &len);
        if (st == MW_ERR_BUFFER_TOO_SMALL && len > cap) {
            cap = len;
            continue;
        }
        if (st != MW_OK) {
            throw_last(env, st);
            goto done;
        }
        break;
    }
    result = new_bytes(env, buf, len);
done:
    free(buf);
    return result;
}

typedef struct detok_ctx {
    const mw_model* model;
    const int32_t* ids;
    size_t n;
    int render_special;
} detok_ctx;

static mw_status detok_produce(const void* ctx, char* buf, size_t cap, size_t* len) {
    const detok_ctx* c = ctx;
    return mw_detokenize(c->model, c->ids, c->n, c->render_special, buf, cap, len);
}

static jbyteArray JNICALL n_detokenize(JNIEnv* env, jclass cls, jlong model, jintArray tokens,
                                       jboolean render_special) {
    detok_ctx c;
    jbyteArray result;
    (void)cls;
    c.model = (const mw_model*)(intptr_t)model;
    c.render_special = render_special ? 1 : 0;
    c.ids = copy_ints(env, tokens, &c.n);
    if (c.ids == NULL) return NULL;
    result = produce_text(env, detok_produce, &c, c.n * 8 + 16);
    free((void*)c.ids);
    return result;
}

typedef struct chat_ctx {
    const mw_model* model;
    const mw_chat_message* messages;
    size_t n;
    int add_generation_prompt;
} chat_ctx;

static mw_status chat_produce(const void* ctx, char* buf, size_t cap, size_t* len) {
    const chat_ctx* c = ctx;
    return mw_chat_format(c->model, c->messages, c->n, c->add_generation_prompt, buf, cap, len);
}

static jbyteArray JNICALL n_chat_format(JNIEnv* env, jclass cls, jlong model, jobjectArray roles,
                                        jobjectArray contents, jboolean add_generation_prompt) {
    byte_strings r, t;
    mw_chat_message* msgs = NULL;
    chat_ctx c;
    jbyteArray result = NULL;
    size_t i, total = 0;
    (void)cls;
    if (byte_strings_copy(env, roles, "chat message role is null", &r) != 0) return NULL;
    if (byte_strings_copy(env, contents, "chat message content is null", &t) != 0) {
        byte_strings_free(&r);
        return NULL;
    }
    if (r.count != t.count) {
        throw_status(env, MW_ERR_INVALID_ARGUMENT, "roles and contents differ in length");
        goto done;
    }
    msgs = calloc(r.count + 1, sizeof *msgs);
    if (msgs == NULL) {
        throw_oom(env, "memwise: chat messages");
        goto done;
    }
    for (i = 0; i < r.count; i++) {
        msgs[i].role = r.data[i];
        msgs[i].role_len = r.len[i];
        msgs[i].content = t.data[i];
        msgs[i].content_len = t.len[i];
        total += r.len[i] + t.len[i];
    }
    c.model = (const mw_model*)(intptr_t)model;
    c.messages = msgs;
    c.n = r.count;
    c.add_generation_prompt = add_generation_prompt ? 1 : 0;
    result = produce_text(env, chat_produce, &c, total + 256);
done:
    free(msgs);
    byte_strings_free(&r);
    byte_strings_free(&t);
    return result;
}

/* ---- engine -------------------------------------------------------------- */

static void JNICALL n_engine_defaults(JNIEnv* env, jclass cls, jobject o) {
    mw_engine_options d;
    (void)cls;
    mw_engine_options_init(&d);
    (*env)->SetIntField(env, o, g.eo_n_threads, (jint)d.n_threads);
    (*env)->SetIntField(env, o, g.eo_n_ctx, (jint)d.n_ctx);
    (*env)->SetIntField(env, o, g.eo_max_sequences, (jint)d.max_sequences);
    (*env)->SetIntField(env, o, g.eo_kv_block_tokens, (jint)d.kv_block_tokens);
    (*env)->SetIntField(env, o, g.eo_kv_type, (jint)d.kv_type);
    (*env)->SetIntField(env, o, g.eo_max_batch_tokens, (jint)d.max_batch_tokens);
    (*env)->SetLongField(env, o, g.eo_memory_budget, (jlong)d.memory_budget_bytes);
}

static jlong JNICALL n_engine_create(JNIEnv* env, jclass cls, jlong model, jobject o) {
    mw_engine_options opts;
    mw_engine* engine = NULL;
    mw_status st;
    (void)cls;
    mw_engine_options_init(&opts);
    /* Java ints are reinterpreted as the C unsigned fields: a negative value
     * becomes huge and the C API rejects it with its own message. */
    opts.n_threads = (uint32_t)(*env)->GetIntField(env, o, g.eo_n_threads);
    opts.n_ctx = (uint32_t)(*env)->GetIntField(env, o, g.eo_n_ctx);
    opts.max_sequences = (uint32_t)(*env)->GetIntField(env, o, g.eo_max_sequences);
    opts.kv_block_tokens = (uint32_t)(*env)->GetIntField(env, o, g.eo_kv_block_tokens);
    opts.kv_type = (int32_t)(*env)->GetIntField(env, o, g.eo_kv_type);
    opts.max_batch_tokens = (uint32_t)(*env)->GetIntField(env, o, g.eo_max_batch_tokens);
    opts.memory_budget_bytes = (uint64_t)(*env)->GetLongField(env, o, g.eo_memory_budget);
    if ((*env)->ExceptionCheck(env)) return 0;
    st = mw_engine_create((mw_model*)(intptr_t)model, &opts, &engine);
    if (st != MW_OK) {
        throw_last(env, st);
        return 0;
    }
    return to_jlong(engine);
}

static void JNICALL n_engine_destroy(JNIEnv* env, jclass cls, jlong engine) {
    (void)env;
    (void)cls;
    mw_engine_destroy((mw_engine*)(intptr_t)engine);
}

/* The mw_memory_report fields, in the order of the MemoryReport(long[]) constructor. */
static jlongArray JNICALL n_engine_memory(JNIEnv* env, jclass cls, jlong engine) {
    mw_memory_report r;
    mw_status st;
    jlong v[19];
    jlongArray result;
    (void)cls;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    st = mw_engine_memory((const mw_engine*)(intptr_t)engine, &r);
    if (st != MW_OK) {
        throw_last(env, st);
        return NULL;
    }
    v[0] = (jlong)r.version;
    v[1] = (jlong)r.weights_mapped_bytes;
    v[2] = (jlong)r.weights_resident_bytes;
    v[3] = (jlong)r.kv_reserved_bytes;
    v[4] = (jlong)r.kv_resident_bytes;
    v[5] = (jlong)r.kv_used_bytes;
    v[6] = (jlong)r.kv_cached_bytes;
    v[7] = (jlong)r.kv_free_bytes;
    v[8] = (jlong)r.activations_reserved_bytes;
    v[9] = (jlong)r.activations_high_water_bytes;
    v[10] = (jlong)r.scratch_bytes;
    v[11] = (jlong)r.heap_committed_bytes;
    v[12] = (jlong)r.heap_overhead_bytes;
    v[13] = (jlong)r.engine_total_bytes;
    v[14] = (jlong)r.process_rss_bytes;
    v[15] = (jlong)r.process_pss_bytes;
    v[16] = (jlong)r.process_anonymous_bytes;
    v[17] = (jlong)r.process_file_bytes;
    v[18] = (jlong)r.heap_allocations;
    result = (*env)->NewLongArray(env, 19);
    if (result == NULL || (*env)->ExceptionCheck(env)) return NULL;
    (*env)->SetLongArrayRegion(env, result, 0, 19, v);
    if ((*env)->ExceptionCheck(env)) return NULL;
    return result;
}

/* ---- requests ------------------------------------------------------------ */

static void JNICALL n_request_defaults(JNIEnv* env, jclass cls, jobject r) {
    mw_request_options d;
    (void)cls;
    mw_request_options_init(&d);
    (*env)->SetBooleanField(env, r, g.rq_add_special, d.add_special ? JNI_TRUE : JNI_FALSE);
    (*env)->SetBooleanField(env, r, g.rq_parse_special, d.parse_special ? JNI_TRUE : JNI_FALSE);
    (*env)->SetIntField(env, r, g.rq_max_tokens, (jint)d.max_tokens);
    (*env)->SetFloatField(env, r, g.rq_temperature, d.temperature);
    (*env)->SetIntField(env, r, g.rq_top_k, d.top_k);
    (*env)->SetFloatField(env, r, g.rq_top_p, d.top_p);
    (*env)->SetFloatField(env, r, g.rq_min_p, d.min_p);
    (*env)->SetFloatField(env, r, g.rq_repeat_penalty, d.repeat_penalty);
    (*env)->SetIntField(env, r, g.rq_repeat_last_n, d.repeat_last_n);
    (*env)->SetLongField(env, r, g.rq_seed, (jlong)d.seed);
    (*env)->SetBooleanField(env, r, g.rq_ignore_eos, d.ignore_eos ? JNI_TRUE : JNI_FALSE);
    (*env)->SetIntField(env, r, g.rq_priority, d.priority);
}

static jlong JNICALL n_submit(JNIEnv* env, jclass cls, jlong engine, jobject r) {
    mw_request_options o;
    mw_request* req = NULL;
    mw_status st;
    jbyteArray prompt;
    jintArray prompt_tokens;
    jobjectArray stop;
    char* text = NULL;
    int32_t* ids = NULL;
    size_t text_len = 0, n_ids = 0, i;
    byte_strings stops;
    mw_text* stop_texts = NULL;
    jlong result = 0;
    (void)cls;
    memset(&stops, 0, sizeof stops);
    mw_request_options_init(&o);

    prompt = (jbyteArray)(*env)->GetObjectField(env, r, g.rq_prompt);
    prompt_tokens = (jintArray)(*env)->GetObjectField(env, r, g.rq_prompt_tokens);
    stop = (jobjectArray)(*env)->GetObjectField(env, r, g.rq_stop);
    if ((*env)->ExceptionCheck(env)) goto done;
    if (prompt != NULL) {
        text = copy_bytes(env, prompt, &text_len);
        if (text == NULL) goto done;
        o.prompt = text;
        o.prompt_len = text_len;
    }
    if (prompt_tokens != NULL) {
        ids = copy_ints(env, prompt_tokens, &n_ids);
        if (ids == NULL) goto done;
        o.prompt_tokens = ids;
        o.n_prompt_tokens = n_ids;
    }
    if (byte_strings_copy(env, stop, "stop string is null", &stops) != 0) goto done;
    if (stops.count > 0) {
        stop_texts = calloc(stops.count, sizeof *stop_texts);
        if (stop_texts == NULL) {
            throw_oom(env, "memwise: stop strings");
            goto done;
        }
        for (i = 0; i < stops.count; i++) {
            stop_texts[i].data = stops.data[i];
            stop_texts[i].len = stops.len[i];
        }
        o.stop = stop_texts;
        o.n_stop = stops.count;
    }
    o.add_special = (*env)->GetBooleanField(env, r, g.rq_add_special) ? 1 : 0;
    o.parse_special = (*env)->GetBooleanField(env, r, g.rq_parse_special) ? 1 : 0;
    o.max_tokens = (uint32_t)(*env)->GetIntField(env, r, g.rq_max_tokens);
    o.temperature = (*env)->GetFloatField(env, r, g.rq_temperature);
    o.top_k = (*env)->GetIntField(env, r, g.rq_top_k);
    o.top_p = (*env)->GetFloatField(env, r, g.rq_top_p);
    o.min_p = (*env)->GetFloatField(env, r, g.rq_min_p);
    o.repeat_penalty = (*env)->GetFloatField(env, r, g.rq_repeat_penalty);
    o.repeat_last_n = (*env)->GetIntField(env, r, g.rq_repeat_last_n);
    o.seed = (uint64_t)(*env)->GetLongField(env, r, g.rq_seed);
    o.ignore_eos = (*env)->GetBooleanField(env, r, g.rq_ignore_eos) ? 1 : 0;
    o.priority = (*env)->GetIntField(env, r, g.rq_priority);
    if ((*env)->ExceptionCheck(env)) goto done;

    st = mw_submit((mw_engine*)(intptr_t)engine, &o, &req);
    if (st != MW_OK) {
        throw_last(env, st);
        goto done;
    }
    result = to_jlong(req);
done:
    free(text);
    free(ids);
    free(stop_texts);
    byte_strings_free(&stops);
    if (prompt) (*env)->DeleteLocalRef(env, prompt);
    if (prompt_tokens) (*env)->DeleteLocalRef(env, prompt_tokens);
    if (stop) (*env)->DeleteLocalRef(env, stop);
    return result;
}

/* One event, or null when none arrived within timeout_ms. */
static jobject JNICALL n_request_next(JNIEnv* env, jclass cls, jlong request, jint timeout_ms) {
    mw_event ev;
    mw_status st;
    jbyteArray text;
    jobject result;
    (void)cls;
    memset(&ev, 0, sizeof ev);
    ev.struct_size = sizeof ev;
    st = mw_request_next((mw_request*)(intptr_t)request, (int32_t)timeout_ms, &ev);
    if (st == MW_TIMEOUT) return NULL;
    if (st != MW_OK) {
        throw_last(env, st);
        return NULL;
    }
    text = new_bytes(env, ev.text, ev.text_len);
    if (text == NULL) return NULL;
    result = (*env)->NewObject(env, g.event_cls, g.event_ctor, (jint)ev.kind, (jint)ev.token, text,
                               (jint)ev.finish_reason, (jint)ev.status, (jint)ev.n_prompt_tokens,
                               (jint)ev.n_generated_tokens);
    (*env)->DeleteLocalRef(env, text);
    if ((*env)->ExceptionCheck(env)) return NULL;
    return result;
}

static void JNICALL n_request_cancel(JNIEnv* env, jclass cls, jlong request) {
    mw_status st;
    (void)cls;
    st = mw_request_cancel((mw_request*)(intptr_t)request);
    if (st != MW_OK) throw_last(env, st);
}

static void JNICALL n_request_release(JNIEnv* env, jclass cls, jlong request) {
    (void)env;
    (void)cls;
    mw_request_release((mw_request*)(intptr_t)request);
}

/* ---- registration -------------------------------------------------------- */

#define REQ_CLASS "L" PKG "Request;"
#define EO_CLASS "L" PKG "Engine$Options;"

static const JNINativeMethod k_methods[] = {
    {"version", "()I", (void*)n_version},
    {"versionString", "()Ljava/lang/String;", (void*)n_version_string},
    {"statusString", "(I)Ljava/lang/String;", (void*)n_status_string},
    {"modelOpen", "([BZ)J", (void*)n_model_open},
    {"modelClose", "(J)V", (void*)n_model_close},
    {"modelInfo", "(J)L" PKG "ModelInfo;", (void*)n_model_info},
    {"tokenize", "(J[BZZ)[I", (void*)n_tokenize},
    {"detokenize", "(J[IZ)[B", (void*)n_detokenize},
    {"chatFormat", "(J[[B[[BZ)[B", (void*)n_chat_format},
    {"engineDefaults", "(" EO_CLASS ")V", (void*)n_engine_defaults},
    {"engineCreate", "(J" EO_CLASS ")J", (void*)n_engine_create},
    {"engineDestroy", "(J)V", (void*)n_engine_destroy},
    {"engineMemory", "(J)[J", (void*)n_engine_memory},
    {"requestDefaults", "(" REQ_CLASS ")V", (void*)n_request_defaults},
    {"submit", "(J" REQ_CLASS ")J", (void*)n_submit},
    {"requestNext", "(JI)L" PKG "Event;", (void*)n_request_next},
    {"requestCancel", "(J)V", (void*)n_request_cancel},
    {"requestRelease", "(J)V", (void*)n_request_release},
};

/* FindClass + NewGlobalRef. NULL with an exception pending on failure. */
static jclass global_class(JNIEnv* env, const char* name) {
    jclass local = (*env)->FindClass(env, name);
    jclass global;
    if (local == NULL || (*env)->ExceptionCheck(env)) return NULL;
    global = (jclass)(*env)->NewGlobalRef(env, local);
    (*env)->DeleteLocalRef(env, local);
    if (global == NULL && !(*env)->ExceptionCheck(env)) throw_oom(env, "memwise: global reference");
    return global;
}

static int field(JNIEnv* env, jclass cls, const char* name, const char* sig, jfieldID* out) {
    *out = (*env)->GetFieldID(env, cls, name, sig);
    return (*out == NULL || (*env)->ExceptionCheck(env)) ? -1 : 0;
}

static int cache_ids(JNIEnv* env) {
    if (!(g.native_cls = global_class(env, PKG "Native"))) return -1;
    if (!(g.event_cls = global_class(env, PKG "Event"))) return -1;
    if (!(g.exception_cls = global_class(env, PKG "MemwiseException"))) return -1;
    if (!(g.info_cls = global_class(env, PKG "ModelInfo"))) return -1;
    if (!(g.byte_array_cls = global_class(env, "[B"))) return -1;
    if (!(g.oom_cls = global_class(env, "java/lang/OutOfMemoryError"))) return -1;
    if (!(g.request_cls = global_class(env, PKG "Request"))) return -1;
    if (!(g.engine_opts_cls = global_class(env, PKG "Engine$Options"))) return -1;

    g.event_ctor = (*env)->GetMethodID(env, g.event_cls, "<init>", "(II[BIIII)V");
    if (g.event_ctor == NULL || (*env)->ExceptionCheck(env)) return -1;
    g.exception_from_native = (*env)->GetStaticMethodID(env, g.exception_cls, "fromNative",
                                                        "(I[B)L" PKG "MemwiseException;");
    if (g.exception_from_native == NULL || (*env)->ExceptionCheck(env)) return -1;
    g.info_ctor = (*env)->GetMethodID(env, g.info_cls, "<init>", "([[B[I[J)V");
    if (g.info_ctor == NULL || (*env)->ExceptionCheck(env)) return -1;

    if (field(env, g.request_cls, "prompt", "[B", &g.rq_prompt) ||
        field(env, g.request_cls, "promptTokens", "[I", &g.rq_prompt_tokens) ||
        field(env, g.request_cls, "addSpecial", "Z", &g.rq_add_special) ||
        field(env, g.request_cls, "parseSpecial", "Z", &g.rq_parse_special) ||
        field(env, g.request_cls, "maxTokens", "I", &g.rq_max_tokens) ||
        field(env, g.request_cls, "temperature", "F", &g.rq_temperature) ||
        field(env, g.request_cls, "topK", "I", &g.rq_top_k) ||
        field(env, g.request_cls, "topP", "F", &g.rq_top_p) ||
        field(env, g.request_cls, "minP", "F", &g.rq_min_p) ||
        field(env, g.request_cls, "repeatPenalty", "F", &g.rq_repeat_penalty) ||
        field(env, g.request_cls, "repeatLastN", "I", &g.rq_repeat_last_n) ||
        field(env, g.request_cls, "seed", "J", &g.rq_seed) ||
        field(env, g.request_cls, "stop", "[[B", &g.rq_stop) ||
        field(env, g.request_cls, "ignoreEos", "Z", &g.rq_ignore_eos) ||
        field(env, g.request_cls, "priority", "I", &g.rq_priority))
        return -1;
    if (field(env, g.engine_opts_cls, "nThreads", "I", &g.eo_n_threads) ||
        field(env, g.engine_opts_cls, "nCtx", "I", &g.eo_n_ctx) ||
        field(env, g.engine_opts_cls, "maxSequences", "I", &g.eo_max_sequences) ||
        field(env, g.engine_opts_cls, "kvBlockTokens", "I", &g.eo_kv_block_tokens) ||
        field(env, g.engine_opts_cls, "kvType", "I", &g.eo_kv_type) ||
        field(env, g.engine_opts_cls, "maxBatchTokens", "I", &g.eo_max_batch_tokens) ||
        field(env, g.engine_opts_cls, "memoryBudgetBytes", "J", &g.eo_memory_budget))
        return -1;
    return 0;
}

static void release_globals(JNIEnv* env) {
    jclass* classes[] = {&g.native_cls, &g.event_cls,   &g.exception_cls,  &g.info_cls,
                         &g.byte_array_cls, &g.oom_cls, &g.request_cls, &g.engine_opts_cls};
    size_t i;
    for (i = 0; i < sizeof classes / sizeof classes[0]; i++) {
        if (*classes[i]) (*env)->DeleteGlobalRef(env, *classes[i]);
        *classes[i] = NULL;
    }
}

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM* vm, void* reserved) {
    JNIEnv* env = NULL;
    (void)reserved;
    if ((*vm)->GetEnv(vm, (void**)&env, JNI_VERSION_1_8) != JNI_OK) return JNI_ERR;
    if (cache_ids(env) != 0) {
        /* Leave the pending exception (NoClassDefFoundError, NoSuchFieldError)
         * for System.load to report; drop what was cached. */
        release_globals(env);
        return JNI_ERR;
    }
    if ((*env)->RegisterNatives(env, g.native_cls, k_methods, (jint)(sizeof k_methods / sizeof k_methods[0])) != 0 ||
        (*env)->ExceptionCheck(env)) {
        release_globals(env);
        return JNI_ERR;
    }
    return JNI_VERSION_1_8;
}

JNIEXPORT void JNICALL JNI_OnUnload(JavaVM* vm, void* reserved) {
    JNIEnv* env = NULL;
    (void)reserved;
    if ((*vm)->GetEnv(vm, (void**)&env, JNI_VERSION_1_8) != JNI_OK) return;
    release_globals(env);
}
