/* replay.h: a plain main() for the fuzz targets, without libFuzzer.
 *
 *   fuzz_X_replay FILE_OR_DIR...
 *
 * Feeds every file (directories: every file in them, sorted) to
 * LLVMFuzzerTestOneInput once and prints one TAP line per directory or
 * file argument. A target aborts on a finding, so a crash shows as a
 * non-zero exit in test/run-one; the file it was running is the last
 * "# replaying" line on stderr.
 */
#ifndef FUZZ_REPLAY_H
#define FUZZ_REPLAY_H
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;
    if (!f) return -1;
    fprintf(stderr, "# replaying %s\n", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (unsigned char *)malloc(n > 0 ? (size_t)n : 1);
    if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) { fclose(f); free(buf); return -1; }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n > 0 ? (size_t)n : 0);
    free(buf);
    return 0;
}

static int replay_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    int i, bad = 0;
    for (i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) { printf("not ok - %s: cannot read\n", argv[i]); bad = 1; continue; }
        if (S_ISDIR(sb.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            char **names = NULL;
            size_t n = 0, cap = 0, k;
            while (d && (e = readdir(d)) != NULL) {
                size_t len;
                if (e->d_name[0] == '.') continue;
                if (n == cap) { cap = cap ? 2 * cap : 64; names = (char **)realloc(names, cap * sizeof *names); }
                len = strlen(argv[i]) + strlen(e->d_name) + 2;
                names[n] = (char *)malloc(len);
                snprintf(names[n], len, "%s/%s", argv[i], e->d_name);
                n++;
            }
            if (d) closedir(d);
            qsort(names, n, sizeof *names, replay_cmp);
            for (k = 0; k < n; k++) {
                if (replay_file(names[k]) != 0) { printf("not ok - %s: cannot read\n", names[k]); bad = 1; }
                free(names[k]);
            }
            free(names);
            printf("ok - replayed %lu inputs from %s\n", (unsigned long)n, argv[i]);
        } else if (replay_file(argv[i]) == 0) printf("ok - replayed %s\n", argv[i]);
        else { printf("not ok - %s: cannot read\n", argv[i]); bad = 1; }
        fflush(stdout);
    }
    return bad;
}
#endif
