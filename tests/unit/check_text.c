#include "config.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "caffe.pb-c.h"
#include "core/clock.h"
#include "io/pbutil.h"
#include "io/text.h"
#include "text_test.pb-c.h"

/* ---- helpers ---- */

static ProtobufCMessage *parse_ok(const char *text, const ProtobufCMessageDescriptor *d) {
  crema_error err = {0};
  ProtobufCMessage *m = NULL;
  crema_status st = txt_parse(text, strlen(text), "t.prototxt", d, &m, &err);
  ck_assert_msg(st == CREMA_OK, "parse failed: %s\ninput: %s", err.message, text);
  ck_assert_ptr_nonnull(m);
  return m;
}

static CremaTest__Node *node_ok(const char *text) {
  return (CremaTest__Node *)parse_ok(text, &crema_test__node__descriptor);
}

/* Parses text expecting failure; checks the message contains want. */
static void parse_fails_n(const char *text, size_t len, const ProtobufCMessageDescriptor *d,
                          const char *want) {
  crema_error err = {0};
  ProtobufCMessage *m = (ProtobufCMessage *)&err; /* must be reset to NULL */
  crema_status st = txt_parse(text, len, "t.prototxt", d, &m, &err);
  ck_assert_msg(st == CREMA_ERR_PARSE, "expected a parse error for: %.200s", text);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(err.message, want) != NULL, "error '%s' lacks '%s'", err.message, want);
}

static void parse_fails(const char *text, const ProtobufCMessageDescriptor *d, const char *want) {
  parse_fails_n(text, strlen(text), d, want);
}

static void node_fails(const char *text, const char *want) {
  parse_fails(text, &crema_test__node__descriptor, want);
}

static char *print_ok(const ProtobufCMessage *m) {
  crema_error err = {0};
  char *out = NULL;
  size_t len = 0;
  ck_assert_msg(txt_print(m, &out, &len, &err) == CREMA_OK, "print failed: %s", err.message);
  ck_assert_uint_eq(len, strlen(out));
  return out;
}

/* Printing then parsing gives an equal message; returns the printed text. */
static char *assert_round_trip(const ProtobufCMessage *m) {
  char *text = print_ok(m);
  ProtobufCMessage *again = parse_ok(text, m->descriptor);
  ck_assert_msg(pb_message_equal(m, again), "re-parsed message differs:\n%s", text);
  protobuf_c_message_free_unpacked(again, NULL);
  return text;
}

static void free_msg(void *m) { protobuf_c_message_free_unpacked(m, NULL); }

static const char *data_dir(void) {
  const char *d = getenv("CREMA_TEST_DATA");
  return d ? d : "tests/data";
}

/* ---- the corpus of real prototxt files ---- */

static int is_solver_file(const char *name) { return strstr(name, "solver") != NULL; }

static int has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void check_corpus_file(const char *path, const char *name) {
  const ProtobufCMessageDescriptor *d = is_solver_file(name)
                                             ? &caffe__solver_parameter__descriptor
                                             : &caffe__net_parameter__descriptor;
  crema_error err = {0};
  ProtobufCMessage *m = NULL;
  ck_assert_msg(txt_parse_file(path, d, &m, &err) == CREMA_OK, "%s", err.message);
  char *text = assert_round_trip(m);

  /* text -> binary -> text is stable */
  size_t size = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(size + 1);
  ck_assert_uint_eq(protobuf_c_message_pack(m, buf), size);
  ProtobufCMessage *unpacked = protobuf_c_message_unpack(d, NULL, size, buf);
  ck_assert_ptr_nonnull(unpacked);
  ck_assert(pb_message_equal(m, unpacked));
  char *text2 = print_ok(unpacked);
  ck_assert_str_eq(text, text2);

  ProtobufCMessage *copy = pb_message_clone(m, &err);
  ck_assert_ptr_nonnull(copy);
  ck_assert(pb_message_equal(copy, m));

  free(buf);
  free(text);
  free(text2);
  free_msg(unpacked);
  free_msg(copy);
  free_msg(m);
}

static int walk_corpus(const char *dir) {
  int count = 0;
  DIR *dp = opendir(dir);
  ck_assert_msg(dp != NULL, "cannot open %s", dir);
  struct dirent *e;
  while ((e = readdir(dp)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    if (S_ISDIR(st.st_mode)) {
      count += walk_corpus(path);
    } else if (has_suffix(e->d_name, ".prototxt")) {
      check_corpus_file(path, e->d_name);
      count++;
    }
  }
  closedir(dp);
  return count;
}

START_TEST(test_corpus) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/corpus", data_dir());
  ck_assert_int_eq(walk_corpus(dir), 58);
}
END_TEST

START_TEST(test_corpus_content) {
  char path[4096];
  crema_error err = {0};
  ProtobufCMessage *m = NULL;
  snprintf(path, sizeof path, "%s/corpus/bvlc-caffe/examples/mnist/lenet_train_test.prototxt",
           data_dir());
  ck_assert_msg(txt_parse_file(path, &caffe__net_parameter__descriptor, &m, &err) == CREMA_OK,
                "%s", err.message);
  Caffe__NetParameter *net = (Caffe__NetParameter *)m;
  ck_assert_str_eq(net->name, "LeNet");
  ck_assert_uint_eq(net->n_layer, 11);
  ck_assert_str_eq(net->layer[0]->type, "Data");
  ck_assert_uint_eq(net->layer[0]->n_include, 1);
  ck_assert_int_eq(net->layer[0]->include[0]->phase, CAFFE__PHASE__TRAIN);
  ck_assert(net->layer[0]->transform_param->has_scale);
  ck_assert_float_eq(net->layer[0]->transform_param->scale, 0.00390625f);
  Caffe__LayerParameter *conv = net->layer[2];
  ck_assert_str_eq(conv->name, "conv1");
  ck_assert_uint_eq(conv->n_param, 2);
  ck_assert_float_eq(conv->param[1]->lr_mult, 2.0f);
  ck_assert_uint_eq(conv->convolution_param->num_output, 20);
  ck_assert_str_eq(conv->convolution_param->weight_filler->type, "xavier");
  free_msg(m);

  snprintf(path, sizeof path, "%s/corpus/bvlc-caffe/examples/mnist/lenet_solver.prototxt",
           data_dir());
  ck_assert(txt_parse_file(path, &caffe__solver_parameter__descriptor, &m, &err) == CREMA_OK);
  Caffe__SolverParameter *s = (Caffe__SolverParameter *)m;
  ck_assert_float_eq(s->base_lr, 0.01f);
  ck_assert_str_eq(s->lr_policy, "inv");
  ck_assert_int_eq(s->max_iter, 10000);
  ck_assert_int_eq(s->solver_mode, CAFFE__SOLVER_PARAMETER__SOLVER_MODE__GPU);
  free_msg(m);
}
END_TEST

/* ---- syntax ---- */

START_TEST(test_empty_and_comments) {
  CremaTest__Node *n = node_ok("");
  ck_assert(!n->has_i32 && n->child == NULL);
  char *text = print_ok(&n->base);
  ck_assert_str_eq(text, "");
  free(text);
  free_msg(n);
  n = node_ok("  # only a comment\n\n# another");
  free_msg(n);
  n = node_ok("i32: 5 # trailing comment\r\n# full line\r\nu32: 7\r\n");
  ck_assert(n->has_i32 && n->i32 == 5 && n->u32 == 7);
  free_msg(n);
  /* a comment at the very end, without newline */
  n = node_ok("i32: 1 #");
  ck_assert_int_eq(n->i32, 1);
  free_msg(n);
}
END_TEST

START_TEST(test_strings) {
  CremaTest__Node *n =
      node_ok("str: \"a\\n\\t\\\\\\'\\\"\\?\\a\\b\\f\\v\\r\\101\\x41\\0011\" raw: 'x\\000y\\xff'");
  ck_assert_str_eq(n->str, "a\n\t\\'\"?\a\b\f\v\rAA\001" "1");
  ck_assert(n->has_raw);
  ck_assert_uint_eq(n->raw.len, 4);
  ck_assert(memcmp(n->raw.data, "x\0y\xff", 4) == 0);
  free_msg(n);
  n = node_ok("str: \"ab\" 'cd'\n  \"ef\" named: 'it''s'");
  ck_assert_str_eq(n->str, "abcdef");
  ck_assert_str_eq(n->named, "its");
  free_msg(n);
  n = node_ok("str: '\"' named: \"'\" names: '' names: \"\\u00e9\\U0001F600\"");
  ck_assert_str_eq(n->str, "\"");
  ck_assert_str_eq(n->named, "'");
  ck_assert_uint_eq(n->n_names, 2);
  ck_assert_str_eq(n->names[0], "");
  ck_assert_str_eq(n->names[1], "\xc3\xa9\xf0\x9f\x98\x80");
  free_msg(n);
  /* bytes fields such as Datum.data */
  Caffe__Datum *d = (Caffe__Datum *)parse_ok("channels: 1 data: \"\\001\\002\\377\"",
                                              &caffe__datum__descriptor);
  ck_assert(d->has_data && d->data.len == 3 && d->data.data[2] == 0xff);
  free_msg(d);
}
END_TEST

START_TEST(test_message_forms) {
  Caffe__NetParameter *net = (Caffe__NetParameter *)parse_ok(
      "layer { name: 'a' } layer: { name: 'b' }\nlayer < name: 'c' >\n"
      "layer: < name: 'd'; type: \"ReLU\", > layer {}",
      &caffe__net_parameter__descriptor);
  ck_assert_uint_eq(net->n_layer, 5);
  ck_assert_str_eq(net->layer[0]->name, "a");
  ck_assert_str_eq(net->layer[3]->name, "d");
  ck_assert_str_eq(net->layer[3]->type, "ReLU");
  ck_assert_ptr_null(net->layer[4]->name);
  free_msg(net);
  parse_fails("layer { name: 'a' >", &caffe__net_parameter__descriptor, "t.prototxt:1:19:");
  parse_fails("layer < name: 'a' }", &caffe__net_parameter__descriptor, "found '}'");
}
END_TEST

START_TEST(test_lists) {
  CremaTest__Node *n = node_ok(
      "floats: [1, 2.5, -3e2] floats: 4 names: ['x', \"y\"] colors: [RED, 1, BLUE] "
      "kids [ { i32: 1 }, < i32: 2 > ] kids: [{i32: 3}] longs: [] flags: [true, f, 1]");
  ck_assert_uint_eq(n->n_floats, 4);
  ck_assert_float_eq(n->floats[2], -300.0f);
  ck_assert_float_eq(n->floats[3], 4.0f);
  ck_assert_uint_eq(n->n_names, 2);
  ck_assert_str_eq(n->names[1], "y");
  ck_assert_uint_eq(n->n_colors, 3);
  ck_assert_int_eq(n->colors[2], CREMA_TEST__COLOR__BLUE);
  ck_assert_uint_eq(n->n_kids, 3);
  ck_assert_int_eq(n->kids[2]->i32, 3);
  ck_assert_uint_eq(n->n_longs, 0);
  ck_assert_uint_eq(n->n_flags, 3);
  ck_assert(n->flags[0] && !n->flags[1] && n->flags[2]);
  free_msg(n);
  node_fails("i32: [1]", "not repeated");
  node_fails("floats: [1, 2", "expected ',' or ']'");
  node_fails("floats: [1 2]", "t.prototxt:1:12:");
  node_fails("floats: [1,]", "expected a number");
}
END_TEST

START_TEST(test_enums) {
  Caffe__LayerParameter *l = (Caffe__LayerParameter *)parse_ok(
      "pooling_param { pool: AVE } include { phase: 1 } exclude { phase: TRAIN }",
      &caffe__layer_parameter__descriptor);
  ck_assert_int_eq(l->pooling_param->pool, CAFFE__POOLING_PARAMETER__POOL_METHOD__AVE);
  ck_assert(l->include[0]->has_phase);
  ck_assert_int_eq(l->include[0]->phase, CAFFE__PHASE__TEST);
  ck_assert_int_eq(l->exclude[0]->phase, CAFFE__PHASE__TRAIN);
  free_msg(l);
  CremaTest__Node *n = node_ok("color: -2");
  ck_assert_int_eq(n->color, CREMA_TEST__COLOR__BLUE);
  free_msg(n);
  parse_fails("pooling_param {\n  pool: MAXX\n}", &caffe__layer_parameter__descriptor,
              "t.prototxt:2:9: unknown value 'MAXX' for enum field 'pool'");
  node_fails("color: 5", "unknown value 5");
  node_fails("color: \"RED\"", "expected a value for enum field 'color'");
}
END_TEST

START_TEST(test_integers) {
  CremaTest__Node *n = node_ok(
      "i32: -2147483648 s32: 0x7fffffff sf32: -010 u32: 4294967295 f32: 0xFFFFFFFF "
      "i64: -9223372036854775808 s64: 9223372036854775807 sf64: -0x10 "
      "u64: 18446744073709551615 f64: 0777");
  ck_assert_int_eq(n->i32, INT32_MIN);
  ck_assert_int_eq(n->s32, INT32_MAX);
  ck_assert_int_eq(n->sf32, -8);
  ck_assert_uint_eq(n->u32, UINT32_MAX);
  ck_assert_uint_eq(n->f32, UINT32_MAX);
  ck_assert(n->i64 == INT64_MIN);
  ck_assert(n->s64 == INT64_MAX);
  ck_assert(n->sf64 == -16);
  ck_assert(n->u64 == UINT64_MAX);
  ck_assert(n->f64 == 0777);
  ck_assert(n->has_i32 && n->has_s32 && n->has_u64 && n->has_f64);
  char *text = assert_round_trip(&n->base);
  free(text);
  free_msg(n);
  n = node_ok("i32: -0 i64: 0");
  ck_assert_int_eq(n->i32, 0);
  free_msg(n);
  node_fails("i32: 3000000000", "t.prototxt:1:6: integer 3000000000 is out of range for int32");
  node_fails("i32: 2147483648", "out of range");
  node_fails("i32: -2147483649", "out of range");
  node_fails("u32: -1", "t.prototxt:1:6: expected a non-negative integer for uint32 field 'u32'");
  node_fails("u32: 4294967296", "out of range");
  node_fails("i64: 9223372036854775808", "out of range");
  node_fails("u64: 18446744073709551616", "out of range");
  node_fails("u64: 0x10000000000000000", "out of range");
  node_fails("i32: 1.5", "expected an integer for int32 field 'i32', found '1.5'");
  node_fails("i32: 09", "octal");
  node_fails("i32: 0x", "hex digits");
  node_fails("i32: 12abc", "space between a number and an identifier");
  node_fails("i32: 0x1.5", "must be integers");
  node_fails("i32 5", "expected ':' after field 'i32', found '5'");
  node_fails("i32:", "found end of file");
}
END_TEST

START_TEST(test_floats) {
  CremaTest__Node *n = node_ok(
      "fl: 1.5e3 db: -2.5E-3 floats: [inf, -inf, Infinity, -infinity, nan, -nan, 1f, 2.5F, .5, "
      "5., 1e+2f, 7, 0, -0, 1e39, 18446744073709551616]");
  ck_assert_float_eq(n->fl, 1500.0f);
  ck_assert_double_eq(n->db, -2.5e-3);
  ck_assert_uint_eq(n->n_floats, 16);
  ck_assert(isinf(n->floats[0]) && n->floats[0] > 0);
  ck_assert(isinf(n->floats[1]) && n->floats[1] < 0);
  ck_assert(isinf(n->floats[2]) && isinf(n->floats[3]) && n->floats[3] < 0);
  ck_assert(isnan(n->floats[4]) && isnan(n->floats[5]));
  ck_assert_float_eq(n->floats[6], 1.0f);
  ck_assert_float_eq(n->floats[7], 2.5f);
  ck_assert_float_eq(n->floats[8], 0.5f);
  ck_assert_float_eq(n->floats[9], 5.0f);
  ck_assert_float_eq(n->floats[10], 100.0f);
  ck_assert_float_eq(n->floats[11], 7.0f);
  ck_assert(n->floats[13] == 0 && signbit(n->floats[13]));
  ck_assert(isinf(n->floats[14]));
  ck_assert_float_eq(n->floats[15], 18446744073709551616.0f);
  char *text = assert_round_trip(&n->base);
  free(text);
  free_msg(n);
  node_fails("fl: abc", "expected a number for float field 'fl', found 'abc'");
  node_fails("fl: 1e", "exponent");
  node_fails("fl: 1.5.2", "second decimal point");
  node_fails("fl: '1'", "expected a number");
  /* Google's parser takes only decimal integers for float fields. */
  node_fails("fl: 0x10", "expected a decimal number for float field 'fl', found '0x10'");
  node_fails("db: -010", "expected a decimal number");
}
END_TEST

START_TEST(test_bools) {
  const char *yes[] = {"true", "True", "t", "1"};
  const char *no[] = {"false", "False", "f", "0"};
  char buf[64];
  for (int i = 0; i < 4; i++) {
    snprintf(buf, sizeof buf, "b: %s", yes[i]);
    CremaTest__Node *n = node_ok(buf);
    ck_assert(n->has_b && n->b);
    free_msg(n);
    snprintf(buf, sizeof buf, "b: %s", no[i]);
    n = node_ok(buf);
    ck_assert(n->has_b && !n->b);
    free_msg(n);
  }
  node_fails("b: 2", "expected true or false for bool field 'b', found '2'");
  node_fails("b: TRUE", "found 'TRUE'");
  node_fails("b: yes", "found 'yes'");
}
END_TEST

START_TEST(test_separators) {
  CremaTest__Node *n = node_ok("i32: 1, u32: 2; kids { i32: 3; }, kids { i32: 4 };fl: 1,");
  ck_assert(n->i32 == 1 && n->u32 == 2 && n->n_kids == 2 && n->kids[1]->i32 == 4);
  free_msg(n);
  node_fails("i32: 1,, u32: 2", "expected a field name of message crema_test.Node, found ','");
}
END_TEST

START_TEST(test_fields_and_presence) {
  node_fails("i32: 1\nnope: 2", "t.prototxt:2:1: no field named 'nope' in message crema_test.Node");
  parse_fails("layer { name: 'a' bogus_param { } }", &caffe__net_parameter__descriptor,
              "t.prototxt:1:19: no field named 'bogus_param' in message caffe.LayerParameter");
  node_fails("i32: 1 i32: 2", "t.prototxt:1:8: non-repeated field 'i32' is specified more than "
             "once");
  node_fails("child { } child { }", "non-repeated field 'child'");
  node_fails("str: 'a' str: 'b'", "non-repeated field 'str'");

  /* optional string with a default points at the default until set */
  CremaTest__Node *n = node_ok("i32: 1");
  const ProtobufCFieldDescriptor *named =
      protobuf_c_message_descriptor_get_field_by_name(&crema_test__node__descriptor, "named");
  ck_assert_ptr_eq(n->named, named->default_value);
  ck_assert(!pb_field_present(&n->base, named));
  free_msg(n);
  n = node_ok("named: 'dflt'");
  ck_assert_ptr_ne(n->named, named->default_value);
  ck_assert(pb_field_present(&n->base, named));
  char *text = print_ok(&n->base);
  ck_assert_str_eq(text, "named: \"dflt\"\n");
  free(text);
  free_msg(n);
}
END_TEST

START_TEST(test_oneof_and_required) {
  CremaTest__Node *n = node_ok("pick_str: 'x'");
  ck_assert_int_eq(n->choice_case, CREMA_TEST__NODE__CHOICE_PICK_STR);
  ck_assert_str_eq(n->pick_str, "x");
  free(assert_round_trip(&n->base));
  free_msg(n);
  n = node_ok("pick_node { i32: 4 }");
  ck_assert_int_eq(n->choice_case, CREMA_TEST__NODE__CHOICE_PICK_NODE);
  free(assert_round_trip(&n->base));
  free_msg(n);
  node_fails("pick_int: 1 pick_str: 'x'", "'pick_str' cannot be set together with field "
             "'pick_int'");
  n = node_ok("pair { min: 1 }");
  ck_assert_float_eq(n->pair->min, 1.0f);
  free(assert_round_trip(&n->base));
  free_msg(n);
  node_fails("pair { max: 1 }", "t.prototxt:1:15: message crema_test.Pair is missing its "
             "required field 'min'");
  parse_fails("max: 1", &crema_test__pair__descriptor, "t.prototxt:1:7: message crema_test.Pair "
              "is missing");
  /* caffe.proto's one required message */
  parse_fails("clip_param { max: 1 }", &caffe__layer_parameter__descriptor, "'min'");
}
END_TEST

/* Google's decoding of \u and \U: UTF-16 surrogate pairs combine, a lone
 * surrogate is encoded as it is, and a code point past 10ffff stays text. */
START_TEST(test_unicode_escapes) {
  CremaTest__Node *n = node_ok("str: '\\ud83d\\ude00|\\ud83d|\\ude00|\\U001fffff|\\x41'");
  ck_assert_str_eq(n->str, "\xf0\x9f\x98\x80|\xed\xa0\xbd|\xed\xb8\x80|\\U001fffff|A");
  free_msg(n);
}
END_TEST

START_TEST(test_unterminated) {
  node_fails("str: \"abc", "t.prototxt:1:6: unterminated string literal: expected closing \", "
             "found end of file");
  node_fails("i32: 1\nstr: 'abc\n'", "t.prototxt:2:6: unterminated string literal");
  node_fails("str: 'a\\", "unterminated");
  node_fails("str: 'a\\q'", "t.prototxt:1:8: invalid escape sequence '\\q'");
  node_fails("str: '\\x'", "hex digits");
  node_fails("str: '\\u12'", "hex digits");
  node_fails("str: '\\X41'", "invalid escape sequence '\\X'");
  node_fails("str: '\\U00200000'", "up to 10ffff");
  node_fails("str: 'a\\000b'", "NUL");
  parse_fails("layer {\n  name: 'x'\n  convolution_param {\n", &caffe__net_parameter__descriptor,
              "t.prototxt:4:1: expected '}' to close field 'convolution_param' opened at 3:21, "
              "found end of file");
  node_fails("kids {", "found end of file");
  node_fails("kids", "expected '{' or '<' to start message field 'kids', found end of file");
  node_fails("kids: 5", "expected '{' or '<'");
  node_fails("}", "t.prototxt:1:1: expected a field name of message crema_test.Node, found '}'");
  node_fails("i32: 1 \x01", "control character '\\x01'");
  node_fails("i32: 1 \xc3\xa9", "non-ASCII byte");
  node_fails("'str': 1", "found string 'str'");
}
END_TEST

START_TEST(test_not_nul_terminated) {
  /* the input buffer ends exactly where the text does */
  const char *cases[] = {"i32: 12", "str: 'ab'", "kids { i32: 1 }", "fl: 1e5", "b: t", "i32",
                         "str: 'a", "fl: 1e", "# c", "i32: 0x1f"};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    size_t n = strlen(cases[i]);
    char *exact = malloc(n);
    memcpy(exact, cases[i], n);
    crema_error err = {0};
    ProtobufCMessage *m = NULL;
    crema_status st = txt_parse(exact, n, "t", &crema_test__node__descriptor, &m, &err);
    ck_assert(st == CREMA_OK || st == CREMA_ERR_PARSE);
    ck_assert((st == CREMA_OK) == (m != NULL));
    free_msg(m);
    free(exact);
  }
}
END_TEST

/* Google's tokenizer rejects a NUL byte anywhere: in a comment (which it
 * ends), in a string literal, after a backslash, between tokens. */
START_TEST(test_nul_bytes) {
  static const char comment[] = "i32: 1 # a\0b\ni32: 2";
  parse_fails_n(comment, sizeof comment - 1, &crema_test__node__descriptor,
                "control character");
  static const char in_string[] = "str: 'a\0b'";
  parse_fails_n(in_string, sizeof in_string - 1, &crema_test__node__descriptor, "NUL byte");
  static const char escaped[] = "str: 'a\\\0'";
  parse_fails_n(escaped, sizeof escaped - 1, &crema_test__node__descriptor, "NUL byte");
  static const char between[] = "i32: 1\0";
  parse_fails_n(between, sizeof between - 1, &crema_test__node__descriptor,
                "control character");
}
END_TEST

static char *repeat_text(const char *head, const char *unit, size_t times, const char *tail,
                         size_t *len) {
  size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
  *len = hl + ul * times + tl;
  char *s = malloc(*len + 1);
  memcpy(s, head, hl);
  for (size_t i = 0; i < times; i++)
    memcpy(s + hl + i * ul, unit, ul);
  memcpy(s + hl + ul * times, tail, tl + 1);
  return s;
}

START_TEST(test_deep_nesting) {
  size_t len;
  char *s = repeat_text("", "child { ", 100000, "", &len);
  parse_fails_n(s, len, &crema_test__node__descriptor,
                "t.prototxt:1:807: messages nested deeper than 100 levels");
  free(s);
  s = repeat_text("", "kids < ", 100000, "", &len);
  parse_fails_n(s, len, &crema_test__node__descriptor, "nested deeper than 100");
  free(s);
  s = repeat_text("", "layer { ", 100000, "", &len);
  parse_fails_n(s, len, &caffe__net_parameter__descriptor, "no field named 'layer'");
  free(s);
  /* 100 levels are fine */
  char *open = repeat_text("", "child {", 100, "", &len);
  char *close = repeat_text(open, "}", 100, "", &len);
  CremaTest__Node *n = node_ok(close);
  free(assert_round_trip(&n->base));
  free_msg(n);
  free(open);
  free(close);
}
END_TEST

START_TEST(test_large_single_line) {
  size_t len;
  /* about 10 MB on one line: a million repeated values */
  char *s = repeat_text("name: 'big' ", "input_dim: 12345 ", 600000, "", &len);
  ck_assert_uint_gt(len, 10000000);
  double t0 = now_seconds();
  Caffe__NetParameter *net = (Caffe__NetParameter *)parse_ok(s, &caffe__net_parameter__descriptor);
  double elapsed = now_seconds() - t0;
  ck_assert_uint_eq(net->n_input_dim, 600000);
  ck_assert_int_eq(net->input_dim[599999], 12345);
  ck_assert_msg(elapsed < 20.0, "10 MB took %.2f s", elapsed); /* quadratic would take hours */
  free_msg(net);
  free(s);
  /* a 10 MB string literal */
  s = repeat_text("name: '", "abcdefghij", 1000000, "'", &len);
  net = (Caffe__NetParameter *)parse_ok(s, &caffe__net_parameter__descriptor);
  ck_assert_uint_eq(strlen(net->name), 10000000);
  free_msg(net);
  free(s);
  /* and an error at its end names the right column */
  s = repeat_text("", "input_dim: 1 ", 800000, "input_dim: x", &len);
  parse_fails_n(s, len, &caffe__net_parameter__descriptor, "t.prototxt:1:10400012:");
  free(s);
}
END_TEST

/* ---- the printer ---- */

START_TEST(test_print_layout) {
  CremaTest__Node *n = node_ok(
      "str: 'hi' i32: -3 kids { fl: 0.1 kids { b: true } } color: BLUE db: 0.1 "
      "names: 'a' names: 'b' raw: '\\n\\001\\377\\'\"' child { } floats: [1e-8, 3.4028235e38, "
      "0.333333343, -0, 100, 1e6, 1234567, 16777216]");
  char *text = print_ok(&n->base);
  ck_assert_str_eq(text,
                   "child {\n"
                   "}\n"
                   "kids {\n"
                   "  kids {\n"
                   "    b: true\n"
                   "  }\n"
                   "  fl: 0.1\n"
                   "}\n"
                   "i32: -3\n"
                   "db: 0.1\n"
                   "str: \"hi\"\n"
                   "raw: \"\\n\\001\\377\\'\\\"\"\n"
                   "color: BLUE\n"
                   "floats: 1e-08\n"
                   "floats: 3.40282347e+38\n"
                   "floats: 0.333333343\n"
                   "floats: -0\n"
                   "floats: 100\n"
                   "floats: 1e+06\n"
                   "floats: 1234567\n"
                   "floats: 16777216\n"
                   "names: \"a\"\n"
                   "names: \"b\"\n");
  free(text);
  free(assert_round_trip(&n->base));
  free_msg(n);
}
END_TEST

START_TEST(test_print_non_ascii_and_enum_number) {
  CremaTest__Node *n = node_ok("str: '\\u00e9\\t' color: GREEN");
  n->color = 7; /* not a value of the enum: printed as a number */
  char *text = print_ok(&n->base);
  ck_assert_str_eq(text, "str: \"\\303\\251\\t\"\ncolor: 7\n");
  free(text);
  free_msg(n);
}
END_TEST

START_TEST(test_print_caffe_net) {
  const char *src =
      "name: \"tiny\"\n"
      "layer {\n"
      "  name: \"data\"\n"
      "  type: \"Input\"\n"
      "  top: \"data\"\n"
      "  input_param {\n"
      "    shape {\n"
      "      dim: 1\n"
      "      dim: 3\n"
      "    }\n"
      "  }\n"
      "}\n"
      "layer {\n"
      "  name: \"conv\"\n"
      "  type: \"Convolution\"\n"
      "  bottom: \"data\"\n"
      "  top: \"conv\"\n"
      "  param {\n"
      "    lr_mult: 1\n"
      "  }\n"
      "  convolution_param {\n"
      "    num_output: 4\n"
      "    kernel_size: 3\n"
      "    weight_filler {\n"
      "      type: \"gaussian\"\n"
      "      std: 0.01\n"
      "    }\n"
      "  }\n"
      "}\n";
  ProtobufCMessage *m = parse_ok(src, &caffe__net_parameter__descriptor);
  char *text = print_ok(m);
  ck_assert_str_eq(text, src);
  free(text);
  free_msg(m);
}
END_TEST

/* ---- files ---- */

static char tmp_dir[256];

static void make_tmp_dir(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/check_text_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
}

static void write_file(const char *path, const char *text, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(text, 1, len, f), len);
  fclose(f);
}

START_TEST(test_files) {
  make_tmp_dir();
  char path[512], empty[512];
  crema_error err = {0};
  ProtobufCMessage *m = NULL;

  snprintf(empty, sizeof empty, "%s/empty.prototxt", tmp_dir);
  write_file(empty, "", 0);
  ck_assert_msg(txt_parse_file(empty, &caffe__net_parameter__descriptor, &m, &err) == CREMA_OK,
                "%s", err.message);
  ck_assert_uint_eq(((Caffe__NetParameter *)m)->n_layer, 0);
  free_msg(m);

  m = (ProtobufCMessage *)&err;
  ck_assert(txt_parse_file(tmp_dir, &caffe__net_parameter__descriptor, &m, &err) != CREMA_OK);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(err.message, "directory") != NULL, "%s", err.message);

  snprintf(path, sizeof path, "%s/missing.prototxt", tmp_dir);
  ck_assert(txt_parse_file(path, &caffe__net_parameter__descriptor, &m, &err) != CREMA_OK);
  ck_assert_msg(strstr(err.message, "missing.prototxt") != NULL, "%s", err.message);

  snprintf(path, sizeof path, "%s/bad.prototxt", tmp_dir);
  write_file(path, "layer {\n  name: 'x'\n  tpye: 'y'\n}\n", 34);
  ck_assert(txt_parse_file(path, &caffe__net_parameter__descriptor, &m, &err) == CREMA_ERR_PARSE);
  ck_assert_msg(strstr(err.message, "bad.prototxt:3:3: no field named 'tpye'") != NULL, "%s",
                err.message);

  /* write then read back */
  ProtobufCMessage *net = parse_ok("name: 'w' layer { name: 'l' type: 'ReLU' }",
                                   &caffe__net_parameter__descriptor);
  snprintf(path, sizeof path, "%s/out.prototxt", tmp_dir);
  ck_assert_msg(txt_write_file(path, net, &err) == CREMA_OK, "%s", err.message);
  ck_assert(txt_parse_file(path, &caffe__net_parameter__descriptor, &m, &err) == CREMA_OK);
  ck_assert(pb_message_equal(net, m));
  free_msg(m);
  free_msg(net);
  unlink(path);
  snprintf(path, sizeof path, "%s/bad.prototxt", tmp_dir);
  unlink(path);
  unlink(empty);
  rmdir(tmp_dir);
}
END_TEST

/* ---- pbutil ---- */

START_TEST(test_equal_and_clone) {
  CremaTest__Node *a = node_ok("fl: nan floats: [nan, 1] kids { str: 'x' } named: 'dflt'");
  CremaTest__Node *b = node_ok("fl: nan floats: [nan, 1] kids { str: 'x' } named: 'dflt'");
  ck_assert(pb_message_equal(&a->base, &b->base));
  b->kids[0]->str[0] = 'y';
  ck_assert(!pb_message_equal(&a->base, &b->base));
  b->kids[0]->str[0] = 'x';
  b->floats[1] = -1;
  ck_assert(!pb_message_equal(&a->base, &b->base));
  b->floats[1] = 1;
  b->i32 = 5; /* not present: ignored */
  ck_assert(pb_message_equal(&a->base, &b->base));
  b->has_i32 = 1;
  ck_assert(!pb_message_equal(&a->base, &b->base));
  free_msg(b);

  /* +0 and -0 differ; present-with-default differs from absent */
  CremaTest__Node *z1 = node_ok("fl: 0"), *z2 = node_ok("fl: -0"), *z3 = node_ok("");
  ck_assert(!pb_message_equal(&z1->base, &z2->base));
  ck_assert(!pb_message_equal(&z1->base, &z3->base));
  ck_assert(!pb_message_equal(&z1->base, NULL));
  ck_assert(pb_message_equal(NULL, NULL));
  free_msg(z1);
  free_msg(z2);
  free_msg(z3);

  crema_error err = {0};
  ProtobufCMessage *c = pb_message_clone(&a->base, &err);
  ck_assert_ptr_nonnull(c);
  ck_assert(pb_message_equal(c, &a->base));
  free_msg(c);
  free_msg(a);
}
END_TEST

START_TEST(test_repeated_append) {
  crema_error err = {0};
  Caffe__NetParameter *net = (Caffe__NetParameter *)parse_ok("input_dim: 1",
                                                             &caffe__net_parameter__descriptor);
  const ProtobufCFieldDescriptor *dim = protobuf_c_message_descriptor_get_field_by_name(
      &caffe__net_parameter__descriptor, "input_dim");
  const ProtobufCFieldDescriptor *layer = protobuf_c_message_descriptor_get_field_by_name(
      &caffe__net_parameter__descriptor, "layer");
  const ProtobufCFieldDescriptor *name = protobuf_c_message_descriptor_get_field_by_name(
      &caffe__net_parameter__descriptor, "name");
  for (int i = 0; i < 5; i++) {
    int32_t *slot = pb_repeated_append(&net->base, dim, &err);
    ck_assert_ptr_nonnull(slot);
    *slot = i + 2;
  }
  Caffe__LayerParameter *l = pb_repeated_append(&net->base, layer, &err);
  ck_assert_ptr_nonnull(l);
  l->name = strdup("appended");
  ck_assert_ptr_null(pb_repeated_append(&net->base, name, &err));
  ck_assert_msg(strstr(err.message, "not repeated") != NULL, "%s", err.message);
  char *text = print_ok(&net->base);
  ck_assert_str_eq(text, "input_dim: 1\ninput_dim: 2\ninput_dim: 3\ninput_dim: 4\n"
                         "input_dim: 5\ninput_dim: 6\nlayer {\n  name: \"appended\"\n}\n");
  free(text);
  free_msg(net);
}
END_TEST

static Suite *text_suite(void) {
  Suite *s = suite_create("text");
  TCase *tc = tcase_create("parse");
  tcase_add_test(tc, test_empty_and_comments);
  tcase_add_test(tc, test_strings);
  tcase_add_test(tc, test_message_forms);
  tcase_add_test(tc, test_lists);
  tcase_add_test(tc, test_enums);
  tcase_add_test(tc, test_integers);
  tcase_add_test(tc, test_floats);
  tcase_add_test(tc, test_bools);
  tcase_add_test(tc, test_separators);
  tcase_add_test(tc, test_fields_and_presence);
  tcase_add_test(tc, test_oneof_and_required);
  tcase_add_test(tc, test_unterminated);
  tcase_add_test(tc, test_unicode_escapes);
  tcase_add_test(tc, test_not_nul_terminated);
  tcase_add_test(tc, test_nul_bytes);
  tcase_add_test(tc, test_deep_nesting);
  tcase_add_test(tc, test_large_single_line);
  suite_add_tcase(s, tc);
  tc = tcase_create("print");
  tcase_add_test(tc, test_print_layout);
  tcase_add_test(tc, test_print_non_ascii_and_enum_number);
  tcase_add_test(tc, test_print_caffe_net);
  suite_add_tcase(s, tc);
  tc = tcase_create("files");
  tcase_add_test(tc, test_files);
  tcase_add_test(tc, test_corpus);
  tcase_add_test(tc, test_corpus_content);
  suite_add_tcase(s, tc);
  tc = tcase_create("pbutil");
  tcase_add_test(tc, test_equal_and_clone);
  tcase_add_test(tc, test_repeated_append);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(text_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
