/* simple.c: load a model, generate 32 tokens greedily from "Once upon a time".
 *
 *   simple [MODEL.gguf]
 *
 * Every call is checked; on failure the library's message (v4_last_error) is printed. */
#include <stdio.h>
#include <v4engine.h>

#ifndef V4_DEFAULT_MODEL
#define V4_DEFAULT_MODEL "models/stories260K-f32.gguf"
#endif

static bool print_token(v4_token token, const char* text, size_t len, void* user) {
  (void)token;
  (void)user;
  fwrite(text, 1, len, stdout);
  fflush(stdout);
  return true;
}

static int report(const char* what, v4_status status) {
  fprintf(stderr, "simple: %s failed: %s (%s)\n", what, v4_last_error(), v4_status_string(status));
  return 1;
}

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : V4_DEFAULT_MODEL;
  const char* prompt = "Once upon a time";
  v4_model* model = NULL;
  v4_context* ctx = NULL;
  v4_sampler* sampler = NULL;
  v4_model_params mparams;
  v4_context_params cparams;
  v4_sampler_params sparams;
  v4_generate_params gparams;
  v4_status status;
  int32_t n_generated = 0;
  int rc = 1;

  mparams = v4_model_default_params();
  status = v4_model_load(path, &mparams, &model);
  if (status != V4_OK) {
    rc = report("loading the model", status);
    goto done;
  }

  cparams = v4_context_default_params();
  status = v4_context_create(model, &cparams, &ctx);
  if (status != V4_OK) {
    rc = report("creating the context", status);
    goto done;
  }

  sparams = v4_sampler_default_params();
  sparams.temperature = 0.0f; /* greedy */
  status = v4_sampler_create(model, &sparams, &sampler);
  if (status != V4_OK) {
    rc = report("creating the sampler", status);
    goto done;
  }

  gparams = v4_generate_default_params();
  gparams.n_predict = 32;
  gparams.add_bos = true;
  gparams.on_token = print_token;
  gparams.user = NULL;

  fputs(prompt, stdout);
  status = v4_generate(ctx, sampler, prompt, &gparams, &n_generated);
  fputs("\n", stdout);
  if (status != V4_OK) {
    rc = report("generating", status);
    goto done;
  }
  fprintf(stderr, "simple: %d tokens generated\n", (int)n_generated);
  rc = 0;

done:
  if (sampler) v4_sampler_free(sampler);
  if (ctx) v4_context_free(ctx);
  if (model) v4_model_free(model);
  return rc;
}
