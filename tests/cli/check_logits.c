/* check_logits MODEL LOGITS_FILE TEXT_FILE N
 *
 * Checks the file written by `v4 run --logits-out` for a greedy run with no prompt: N rows of
 * n_vocab little-endian float32, all finite, consecutive rows different, and the argmax of
 * each row is the token that was generated, i.e. detokenize(BOS, argmax...) equals the text
 * the run printed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <v4engine.h>

static long file_size(FILE* f) {
  long n;
  if (fseek(f, 0, SEEK_END) != 0) return -1;
  n = ftell(f);
  rewind(f);
  return n;
}

static float le_float(const unsigned char* p) {
  unsigned long u = (unsigned long)p[0] | ((unsigned long)p[1] << 8) | ((unsigned long)p[2] << 16) |
                    ((unsigned long)p[3] << 24);
  unsigned int u32 = (unsigned int)u;
  float f;
  memcpy(&f, &u32, 4);
  return f;
}

int main(int argc, char** argv) {
  v4_model* model = NULL;
  v4_model_params mp;
  FILE* f;
  FILE* tf;
  long size, expected_size;
  int n_rows, n_vocab, r, i, rc = 1;
  unsigned char* bytes = NULL;
  float* rows = NULL;
  v4_token* tokens = NULL;
  char text[8192], detok[8192];
  size_t text_len, n_bytes = 0;
  v4_status st;

  if (argc != 5) {
    fprintf(stderr, "usage: check_logits MODEL LOGITS_FILE TEXT_FILE N\n");
    return 2;
  }
  n_rows = atoi(argv[4]);
  mp = v4_model_default_params();
  mp.vocab_only = true;
  st = v4_model_load(argv[1], &mp, &model);
  if (st != V4_OK) {
    fprintf(stderr, "check_logits: load: %s\n", v4_last_error());
    return 1;
  }
  n_vocab = v4_model_n_vocab(model);

  f = fopen(argv[2], "rb");
  if (!f) {
    fprintf(stderr, "check_logits: cannot open %s\n", argv[2]);
    goto done;
  }
  size = file_size(f);
  expected_size = (long)n_rows * n_vocab * 4;
  if (size != expected_size) {
    fprintf(stderr, "check_logits: %s has %ld bytes, expected %d rows * %d * 4 = %ld\n", argv[2],
            size, n_rows, n_vocab, expected_size);
    fclose(f);
    goto done;
  }
  bytes = malloc((size_t)size);
  rows = malloc((size_t)size);
  tokens = malloc(sizeof(v4_token) * (size_t)(n_rows + 1));
  if (!bytes || !rows || !tokens || fread(bytes, 1, (size_t)size, f) != (size_t)size) {
    fprintf(stderr, "check_logits: cannot read %s\n", argv[2]);
    fclose(f);
    goto done;
  }
  fclose(f);
  for (i = 0; i < n_rows * n_vocab; ++i) rows[i] = le_float(bytes + 4 * (size_t)i);

  tokens[0] = v4_token_bos(model);
  for (r = 0; r < n_rows; ++r) {
    const float* row = rows + (size_t)r * n_vocab;
    int best = 0;
    for (i = 0; i < n_vocab; ++i) {
      if (!isfinite(row[i])) {
        fprintf(stderr, "check_logits: row %d, logit %d is not finite\n", r, i);
        goto done;
      }
      if (row[i] > row[best]) best = i;
    }
    if (r > 0 && memcmp(row, row - n_vocab, sizeof(float) * (size_t)n_vocab) == 0) {
      fprintf(stderr, "check_logits: rows %d and %d are identical\n", r - 1, r);
      goto done;
    }
    tokens[r + 1] = best;
  }

  st = v4_detokenize(model, tokens, n_rows + 1, false, detok, sizeof detok, &n_bytes);
  if (st != V4_OK) {
    fprintf(stderr, "check_logits: detokenize: %s\n", v4_last_error());
    goto done;
  }
  tf = fopen(argv[3], "rb");
  if (!tf) {
    fprintf(stderr, "check_logits: cannot open %s\n", argv[3]);
    goto done;
  }
  text_len = fread(text, 1, sizeof text, tf);
  fclose(tf);
  if (text_len != n_bytes || memcmp(text, detok, n_bytes) != 0) {
    fprintf(stderr, "check_logits: argmax tokens give \"%.*s\", the run printed \"%.*s\"\n",
            (int)n_bytes, detok, (int)text_len, text);
    goto done;
  }
  printf("check_logits: %d rows of %d logits, argmax = generated tokens\n", n_rows, n_vocab);
  rc = 0;

done:
  free(bytes);
  free(rows);
  free(tokens);
  if (model) v4_model_free(model);
  return rc;
}
