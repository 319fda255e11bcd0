/* Reads the llama.cpp oracle fixtures in tests/data (see make_fixtures.py):
 * whitespace-separated fields per line, '#' lines are comments, text as hex,
 * id lists comma-separated or '-' for none. C99. */
#ifndef MW_FIXTURE_READER_H
#define MW_FIXTURE_READER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture_case {
    int add_special, parse_special;
    char* text;          /* decoded bytes, NUL-terminated for convenience */
    size_t text_len;
    int32_t* ids[2];     /* up to two id lists (greedy: prompt, generated; tokenizer: ids) */
    size_t n_ids[2];
} fixture_case;

static int fx_hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static char* fx_unhex(const char* s, size_t* len) {
    size_t n = strlen(s), i;
    char* out = (char*)malloc(n / 2 + 1);
    if (strcmp(s, "-") == 0) n = 0;
    for (i = 0; i + 1 < n; i += 2) out[i / 2] = (char)(fx_hex(s[i]) * 16 + fx_hex(s[i + 1]));
    out[n / 2] = 0;
    *len = n / 2;
    return out;
}

static int32_t* fx_ids(const char* s, size_t* n) {
    size_t cap = 16, count = 0;
    int32_t* ids = (int32_t*)malloc(cap * sizeof(int32_t));
    const char* p = s;
    if (strcmp(s, "-") == 0) { *n = 0; return ids; }
    while (*p) {
        char* end;
        long v = strtol(p, &end, 10);
        if (end == p) break;
        if (count == cap) { cap *= 2; ids = (int32_t*)realloc(ids, cap * sizeof(int32_t)); }
        ids[count++] = (int32_t)v;
        p = end;
        if (*p == ',') p++;
    }
    *n = count;
    return ids;
}

/* Reads every case of a fixture file with n_lists id lists per line.
 * Returns the number of cases (0 when the file is absent), *out owned by caller. */
static size_t fx_read(const char* path, int n_lists, fixture_case** out) {
    FILE* f = fopen(path, "r");
    size_t cap = 16, n = 0;
    static char line[1 << 20];
    fixture_case* cases;
    *out = NULL;
    if (!f) return 0;
    cases = (fixture_case*)calloc(cap, sizeof(fixture_case));
    while (fgets(line, sizeof line, f)) {
        char* tok[5];
        int k = 0;
        char* p = strtok(line, " \t\r\n");
        if (!p || p[0] == '#') continue;
        while (p && k < 5) { tok[k++] = p; p = strtok(NULL, " \t\r\n"); }
        if (k < 3 + n_lists) continue;
        if (n == cap) { cap *= 2; cases = (fixture_case*)realloc(cases, cap * sizeof(fixture_case)); }
        memset(&cases[n], 0, sizeof cases[n]);
        cases[n].add_special = atoi(tok[0]);
        cases[n].parse_special = atoi(tok[1]);
        cases[n].text = fx_unhex(tok[2], &cases[n].text_len);
        for (k = 0; k < n_lists; k++) cases[n].ids[k] = fx_ids(tok[3 + k], &cases[n].n_ids[k]);
        n++;
    }
    fclose(f);
    *out = cases;
    return n;
}

static void fx_free(fixture_case* cases, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) { free(cases[i].text); free(cases[i].ids[0]); free(cases[i].ids[1]); }
    free(cases);
}

#endif
