/* Text format parser, following Google's TextFormat::Parser (the reference
 * for what Caffe accepts), with errors that name file:line:column. */
#include "config.h"

#include "io/text.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/file.h"
#include "io/pbutil.h"
#include "io/text_local.h"

/* Google's default recursion limit. */
#define TXT_MAX_DEPTH 100
/* Largest prototxt txt_parse_file accepts. */
#define TXT_MAX_FILE_SIZE ((size_t)1 << 30)
/* Identifiers longer than this cannot name a field or enum value. */
#define TXT_MAX_NAME 256

enum tok_kind { TOK_END, TOK_IDENT, TOK_INT, TOK_FLOAT, TOK_STRING, TOK_SYMBOL };

typedef struct token {
  enum tok_kind kind;
  size_t start, len; /* bytes of the input */
  size_t line, col;  /* 1-based */
} token;

typedef struct parser {
  const char *text;
  size_t len, pos;
  size_t line, line_start;
  const char *file;
  token tok; /* the lookahead */
  int depth;
  crema_error *err;
} parser;

/* ---- errors ---- */

static crema_status fail_at(parser *p, size_t line, size_t col, const char *fmt, ...)
    CREMA_PRINTF(4, 5);

static crema_status fail_at(parser *p, size_t line, size_t col, const char *fmt, ...) {
  char what[CREMA_ERROR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return crema_fail(p->err, CREMA_ERR_PARSE, "%s:%zu:%zu: %s", p->file, line, col, what);
}

#define FAIL_TOK(p, t, ...) fail_at((p), (t)->line, (t)->col, __VA_ARGS__)

static crema_status fail_nomem(parser *p, const token *t, const char *what) {
  return crema_fail(p->err, CREMA_ERR_NOMEM, "%s:%zu:%zu: out of memory %s", p->file, t->line,
                    t->col, what);
}

/* Appends byte c to out, escaped so the message stays one printable line. */
static size_t put_escaped(char *out, size_t cap, size_t at, unsigned char c) {
  char tmp[8];
  if (c >= 0x20 && c < 0x7f && c != '\\')
    snprintf(tmp, sizeof tmp, "%c", c);
  else if (c == '\\')
    snprintf(tmp, sizeof tmp, "\\\\");
  else
    snprintf(tmp, sizeof tmp, "\\x%02x", c);
  size_t n = strlen(tmp);
  if (at + n + 1 > cap)
    return at;
  memcpy(out + at, tmp, n + 1);
  return at + n;
}

/* "end of file", "'name'" or "string \"abc\"", shortened for long tokens. */
static const char *describe(const parser *p, const token *t, char *buf, size_t cap) {
  const size_t max_shown = 40;
  if (t->kind == TOK_END)
    return "end of file";
  size_t at = 0;
  const char *prefix = t->kind == TOK_STRING ? "string " : "'";
  at = (size_t)snprintf(buf, cap, "%s", prefix);
  size_t n = t->len < max_shown ? t->len : max_shown;
  for (size_t i = 0; i < n; i++)
    at = put_escaped(buf, cap, at, (unsigned char)p->text[t->start + i]);
  snprintf(buf + at, cap - at, "%s%s", n < t->len ? "..." : "", t->kind == TOK_STRING ? "" : "'");
  return buf;
}

#define FOUND(p) describe((p), &(p)->tok, found_buf, sizeof found_buf)

/* ---- lexer ---- */

static int is_letter(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_octal(int c) { return c >= '0' && c <= '7'; }
static int is_hex(int c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static int hex_value(int c) {
  return is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : c - 'A' + 10;
}

/* The byte k positions ahead, or -1 past the end. */
static int peek(const parser *p, size_t k) {
  return p->pos + k < p->len ? (unsigned char)p->text[p->pos + k] : -1;
}

static void advance(parser *p) {
  if (p->text[p->pos] == '\n') {
    p->line++;
    p->line_start = p->pos + 1;
  }
  p->pos++;
}

static size_t column(const parser *p) { return p->pos - p->line_start + 1; }

static void skip_space_and_comments(parser *p) {
  for (int c = peek(p, 0); c >= 0; c = peek(p, 0)) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
      advance(p);
    } else if (c == '#') {
      /* Google's tokenizer ends a comment at a NUL byte too, then rejects
       * the NUL as a control character. */
      while (peek(p, 0) > 0 && peek(p, 0) != '\n')
        advance(p);
    } else {
      break;
    }
  }
}

static crema_status fail_here(parser *p, const char *what) {
  return fail_at(p, p->line, column(p), "%s", what);
}

static void consume_while(parser *p, int (*pred)(int)) {
  while (peek(p, 0) >= 0 && pred(peek(p, 0)))
    advance(p);
}

/* Scans the rest of a number whose first character (a digit, or the '.' of
 * ".5") has been consumed, with the same rules as Google's tokenizer. */
static crema_status lex_number(parser *p, int started_with_zero, int started_with_dot) {
  int is_float = 0;
  if (started_with_zero && (peek(p, 0) == 'x' || peek(p, 0) == 'X')) {
    advance(p);
    if (!is_hex(peek(p, 0)))
      return fail_here(p, "expected hex digits after '0x'");
    consume_while(p, is_hex);
  } else if (started_with_zero && is_digit(peek(p, 0))) {
    consume_while(p, is_octal);
    if (is_digit(peek(p, 0)))
      return fail_here(p, "numbers starting with a leading zero must be octal (digits 0-7)");
  } else {
    if (started_with_dot) {
      is_float = 1;
    } else {
      consume_while(p, is_digit);
      if (peek(p, 0) == '.') {
        advance(p);
        is_float = 1;
      }
    }
    consume_while(p, is_digit);
    if (peek(p, 0) == 'e' || peek(p, 0) == 'E') {
      is_float = 1;
      advance(p);
      if (peek(p, 0) == '+' || peek(p, 0) == '-')
        advance(p);
      if (!is_digit(peek(p, 0)))
        return fail_here(p, "expected exponent digits after 'e'");
      consume_while(p, is_digit);
    }
    if (peek(p, 0) == 'f' || peek(p, 0) == 'F') {
      is_float = 1;
      advance(p);
    }
  }
  if (is_letter(peek(p, 0)) || is_digit(peek(p, 0)))
    return fail_here(p, "expected a space between a number and an identifier");
  if (peek(p, 0) == '.')
    return fail_here(p, is_float ? "a number cannot have a second decimal point or exponent"
                                 : "hex and octal numbers must be integers");
  p->tok.kind = is_float ? TOK_FLOAT : TOK_INT;
  return CREMA_OK;
}

/* Checks the escape sequence after a backslash (already consumed). */
static crema_status lex_escape(parser *p) {
  size_t line = p->line, col = column(p) - 1;
  int c = peek(p, 0);
  if (c <= 0)
    return CREMA_OK; /* the caller reports the unterminated literal or the NUL */
  if (strchr("abfnrtv\\?'\"", c) != NULL) {
    advance(p);
  } else if (is_octal(c)) {
    for (int i = 0; i < 3 && is_octal(peek(p, 0)); i++)
      advance(p);
  } else if (c == 'x') {
    advance(p);
    if (!is_hex(peek(p, 0)))
      return fail_at(p, line, col, "expected hex digits after '\\x' in string literal");
    for (int i = 0; i < 2 && is_hex(peek(p, 0)); i++)
      advance(p);
  } else if (c == 'u') {
    advance(p);
    for (int i = 0; i < 4; i++) {
      if (!is_hex(peek(p, 0)))
        return fail_at(p, line, col, "expected 4 hex digits after '\\u' in string literal");
      advance(p);
    }
  } else if (c == 'U') {
    /* Google's tokenizer: eight hex digits, 0 to 1fffff. */
    advance(p);
    for (int i = 0; i < 8; i++) {
      int d = peek(p, 0);
      int ok = i < 2 ? d == '0' : i == 2 ? (d == '0' || d == '1') : is_hex(d);
      if (!ok)
        return fail_at(p, line, col, "expected 8 hex digits up to 10ffff after '\\U' in "
                       "string literal");
      advance(p);
    }
  } else {
    char shown[8];
    put_escaped(shown, sizeof shown, 0, (unsigned char)c);
    return fail_at(p, line, col, "invalid escape sequence '\\%s' in string literal", shown);
  }
  return CREMA_OK;
}

static crema_status lex_string(parser *p, int quote) {
  advance(p);
  for (;;) {
    int c = peek(p, 0);
    if (c < 0)
      return FAIL_TOK(p, &p->tok, "unterminated string literal: expected closing %c, found "
                      "end of file", quote);
    if (c == '\n')
      return FAIL_TOK(p, &p->tok, "unterminated string literal: expected closing %c before "
                      "the end of line %zu", quote, p->line);
    if (c == 0)
      return fail_here(p, "unexpected NUL byte in a string literal (write it as \\0)");
    advance(p);
    if (c == quote)
      break;
    if (c == '\\')
      CREMA_TRY(lex_escape(p));
  }
  p->tok.kind = TOK_STRING;
  return CREMA_OK;
}

/* Reads the next token into p->tok. */
static crema_status next(parser *p) {
  skip_space_and_comments(p);
  token *t = &p->tok;
  t->start = p->pos;
  t->line = p->line;
  t->col = column(p);
  t->len = 0;
  int c = peek(p, 0);
  crema_status st = CREMA_OK;
  if (c < 0) {
    t->kind = TOK_END;
    return CREMA_OK;
  }
  if (is_letter(c)) {
    while (is_letter(peek(p, 0)) || is_digit(peek(p, 0)))
      advance(p);
    t->kind = TOK_IDENT;
  } else if (is_digit(c)) {
    advance(p);
    st = lex_number(p, c == '0', 0);
  } else if (c == '.' && is_digit(peek(p, 1))) {
    advance(p);
    st = lex_number(p, 0, 1);
  } else if (c == '"' || c == '\'') {
    st = lex_string(p, c);
  } else if (c < 0x20 || c >= 0x7f) {
    char shown[8];
    put_escaped(shown, sizeof shown, 0, (unsigned char)c);
    return fail_at(p, p->line, column(p), "unexpected %s '%s' outside a string literal",
                   c < 0x80 ? "control character" : "non-ASCII byte", shown);
  } else {
    advance(p);
    t->kind = TOK_SYMBOL;
  }
  t->len = p->pos - t->start;
  return st;
}

static int at_symbol(const parser *p, char c) {
  return p->tok.kind == TOK_SYMBOL && p->text[p->tok.start] == c;
}

static int tok_is(const parser *p, const token *t, const char *word) {
  size_t n = strlen(word);
  return t->len == n && memcmp(p->text + t->start, word, n) == 0;
}

static int tok_is_nocase(const parser *p, const token *t, const char *word) {
  size_t n = strlen(word);
  if (t->len != n)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = p->text[t->start + i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    if (c != word[i])
      return 0;
  }
  return 1;
}

/* Copies an identifier into buf as a C string; 0 if it does not fit. */
static int tok_copy_name(const parser *p, const token *t, char *buf, size_t cap) {
  if (t->len >= cap)
    return 0;
  memcpy(buf, p->text + t->start, t->len);
  buf[t->len] = '\0';
  return 1;
}

/* ---- values ---- */

static char *put_utf8(char *out, uint32_t code) {
  if (code < 0x80) {
    *out++ = (char)code;
  } else if (code < 0x800) {
    *out++ = (char)(0xC0 | (code >> 6));
    *out++ = (char)(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    *out++ = (char)(0xE0 | (code >> 12));
    *out++ = (char)(0x80 | ((code >> 6) & 0x3F));
    *out++ = (char)(0x80 | (code & 0x3F));
  } else {
    *out++ = (char)(0xF0 | (code >> 18));
    *out++ = (char)(0x80 | ((code >> 12) & 0x3F));
    *out++ = (char)(0x80 | ((code >> 6) & 0x3F));
    *out++ = (char)(0x80 | (code & 0x3F));
  }
  return out;
}

static int is_hex_run(const char *s, int n) {
  for (int i = 0; i < n; i++)
    if (!is_hex((unsigned char)s[i]))
      return 0;
  return 1;
}

static uint32_t read_hex(const char *s, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; i++)
    v = v * 16 + (uint32_t)hex_value((unsigned char)s[i]);
  return v;
}

/* The byte a one-letter escape such as \n stands for, or -1. */
static int simple_escape(char c) {
  switch (c) {
    case 'a': return '\a';
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'v': return '\v';
    case '\\': case '?': case '\'': case '"': return c;
    default: return -1;
  }
}

/* Decodes the escape sequence after a backslash at *sp (validated by the
 * lexer), writing its bytes at out; returns the new end of out. */
static char *decode_escape(const char **sp, const char *end, char *out) {
  const char *s = *sp;
  char c = *s++;
  if (simple_escape(c) >= 0) {
    *out++ = (char)simple_escape(c);
  } else if (is_octal((unsigned char)c)) {
    unsigned code = (unsigned)(c - '0');
    for (int i = 0; i < 2 && s < end && is_octal((unsigned char)*s); i++)
      code = code * 8 + (unsigned)(*s++ - '0');
    *out++ = (char)(code & 0xff);
  } else if (c == 'x') {
    unsigned code = 0;
    for (int i = 0; i < 2 && s < end && is_hex((unsigned char)*s); i++)
      code = code * 16 + (unsigned)hex_value((unsigned char)*s++);
    *out++ = (char)code;
  } else if (c == 'u' || c == 'U') {
    uint32_t code = read_hex(s, c == 'u' ? 4 : 8);
    s += c == 'u' ? 4 : 8;
    /* As Google's parser: a head surrogate followed by a \u trail surrogate
     * makes one code point; a lone surrogate is encoded as it is; past
     * 10ffff the escape stays as text. */
    if (code >= 0xD800 && code <= 0xDBFF && end - s >= 6 && s[0] == '\\' && s[1] == 'u' &&
        is_hex_run(s + 2, 4)) {
      uint32_t trail = read_hex(s + 2, 4);
      if (trail >= 0xDC00 && trail <= 0xDFFF) {
        code = 0x10000 + ((code - 0xD800) << 10) + (trail - 0xDC00);
        s += 6;
      }
    }
    if (code > 0x10FFFF)
      out += sprintf(out, "\\U%08x", (unsigned)code);
    else
      out = put_utf8(out, code);
  }
  *sp = s;
  return out;
}

/* Decodes a string literal token (already validated by the lexer) and
 * appends its bytes to *buf. */
static crema_status append_string_literal(parser *p, const token *t, char **buf, size_t *len,
                                          size_t *cap) {
  size_t need;
  if (!size_add(*len, t->len + 1, &need))
    return fail_nomem(p, t, "for a string literal");
  if (need > *cap) {
    size_t grown;
    if (!size_mul(*cap, 2, &grown) || grown < need)
      grown = need;
    char *b = realloc(*buf, grown);
    if (b == NULL)
      return fail_nomem(p, t, "for a string literal");
    *buf = b;
    *cap = grown;
  }
  const char *s = p->text + t->start + 1, *end = p->text + t->start + t->len - 1;
  char *out = *buf + *len;
  while (s < end) {
    if (*s != '\\') {
      *out++ = *s++;
      continue;
    }
    s++;
    out = decode_escape(&s, end, out);
  }
  *len = (size_t)(out - *buf);
  return CREMA_OK;
}

/* One or more adjacent string literals, concatenated. */
static crema_status parse_string_value(parser *p, const ProtobufCFieldDescriptor *f, char **data,
                                       size_t *len) {
  char found_buf[128];
  if (p->tok.kind != TOK_STRING)
    return FAIL_TOK(p, &p->tok, "expected a quoted string for field '%s', found %s", f->name,
                    FOUND(p));
  char *buf = NULL;
  size_t n = 0, cap = 0;
  while (p->tok.kind == TOK_STRING) {
    crema_status st = append_string_literal(p, &p->tok, &buf, &n, &cap);
    if (st == CREMA_OK)
      st = next(p);
    if (st != CREMA_OK) {
      free(buf);
      return st;
    }
  }
  buf[n] = '\0';
  *data = buf;
  *len = n;
  return CREMA_OK;
}

/* Magnitude of an integer token (decimal, 0x hex or 0 octal); 0 on overflow. */
static int int_token_value(const parser *p, const token *t, uint64_t *out) {
  const char *s = p->text + t->start, *end = s + t->len;
  unsigned base = 10;
  if (t->len > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s += 2;
  } else if (t->len > 1 && s[0] == '0') {
    base = 8;
    s += 1;
  }
  uint64_t v = 0;
  for (; s < end; s++) {
    unsigned d = (unsigned)hex_value((unsigned char)*s);
    if (v > (UINT64_MAX - d) / base)
      return 0;
    v = v * base + d;
  }
  *out = v;
  return 1;
}

/* An integer with an optional '-', checked against [-neg_max, pos_max]. */
static crema_status parse_integer(parser *p, const ProtobufCFieldDescriptor *f,
                                  const char *type_name, uint64_t pos_max, uint64_t neg_max,
                                  int *negative, uint64_t *magnitude) {
  char found_buf[128];
  token first = p->tok;
  *negative = 0;
  if (at_symbol(p, '-')) {
    if (neg_max == 0)
      return FAIL_TOK(p, &first, "expected a non-negative integer for %s field '%s', found '-'",
                      type_name, f->name);
    *negative = 1;
    CREMA_TRY(next(p));
  }
  if (p->tok.kind != TOK_INT)
    return FAIL_TOK(p, &p->tok, "expected an integer for %s field '%s', found %s", type_name,
                    f->name, FOUND(p));
  uint64_t v;
  const token *t = &p->tok;
  if (!int_token_value(p, t, &v) || v > (*negative ? neg_max : pos_max))
    return FAIL_TOK(p, &first, "integer %s%.*s%s is out of range for %s field '%s' (%s%llu to "
                    "%llu)", *negative ? "-" : "", (int)(t->len < 40 ? t->len : 40),
                    p->text + t->start, t->len > 40 ? "..." : "", type_name, f->name,
                    neg_max ? "-" : "", (unsigned long long)neg_max,
                    (unsigned long long)pos_max);
  *magnitude = v;
  return next(p);
}

static crema_status parse_signed(parser *p, const ProtobufCFieldDescriptor *f,
                                 const char *type_name, int64_t max, int64_t *out) {
  int neg;
  uint64_t mag;
  CREMA_TRY(parse_integer(p, f, type_name, (uint64_t)max, (uint64_t)max + 1, &neg, &mag));
  /* mag <= 2^63 here, and -(mag-1)-1 avoids overflowing when mag == 2^63. */
  *out = neg ? (mag == 0 ? 0 : -(int64_t)(mag - 1) - 1) : (int64_t)mag;
  return CREMA_OK;
}

static crema_status parse_unsigned(parser *p, const ProtobufCFieldDescriptor *f,
                                   const char *type_name, uint64_t max, uint64_t *out) {
  int neg;
  return parse_integer(p, f, type_name, max, 0, &neg, out);
}

/* strtod on a token's text, without the f/F suffix Google allows. */
static crema_status token_to_double(parser *p, const token *t, double *out) {
  char small[64];
  size_t n = t->len;
  const char *s = p->text + t->start;
  if (n > 0 && (s[n - 1] == 'f' || s[n - 1] == 'F'))
    n--;
  char *copy = n < sizeof small ? small : malloc(n + 1);
  if (copy == NULL)
    return fail_nomem(p, t, "for a number");
  memcpy(copy, s, n);
  copy[n] = '\0';
  *out = strtod(copy, NULL);
  if (copy != small)
    free(copy);
  return CREMA_OK;
}

static crema_status parse_double(parser *p, const ProtobufCFieldDescriptor *f,
                                 const char *type_name, double *out) {
  char found_buf[128];
  int neg = 0;
  double v;
  if (at_symbol(p, '-')) {
    neg = 1;
    CREMA_TRY(next(p));
  }
  const token *t = &p->tok;
  if (t->kind == TOK_INT) {
    /* Like Google's parser (protobuf 3.21), hex and octal integers are for
     * integer fields only; a decimal past uint64 reads as a float. */
    uint64_t mag;
    if (t->len > 1 && p->text[t->start] == '0')
      return FAIL_TOK(p, t, "expected a decimal number for %s field '%s', found %s", type_name,
                      f->name, FOUND(p));
    if (int_token_value(p, t, &mag))
      v = (double)mag;
    else
      CREMA_TRY(token_to_double(p, t, &v));
  } else if (t->kind == TOK_FLOAT) {
    CREMA_TRY(token_to_double(p, t, &v));
  } else if (t->kind == TOK_IDENT && (tok_is_nocase(p, t, "inf") ||
                                      tok_is_nocase(p, t, "infinity"))) {
    v = INFINITY;
  } else if (t->kind == TOK_IDENT && tok_is_nocase(p, t, "nan")) {
    v = NAN;
  } else {
    return FAIL_TOK(p, t, "expected a number for %s field '%s', found %s", type_name, f->name,
                    FOUND(p));
  }
  *out = neg ? -v : v;
  return next(p);
}

static crema_status parse_bool(parser *p, const ProtobufCFieldDescriptor *f,
                               protobuf_c_boolean *out) {
  char found_buf[128];
  const token *t = &p->tok;
  uint64_t v;
  if (t->kind == TOK_IDENT && (tok_is(p, t, "true") || tok_is(p, t, "True") ||
                               tok_is(p, t, "t"))) {
    *out = 1;
  } else if (t->kind == TOK_IDENT && (tok_is(p, t, "false") || tok_is(p, t, "False") ||
                                      tok_is(p, t, "f"))) {
    *out = 0;
  } else if (t->kind == TOK_INT && int_token_value(p, t, &v) && v <= 1) {
    *out = (protobuf_c_boolean)v;
  } else {
    return FAIL_TOK(p, t, "expected true or false for bool field '%s', found %s", f->name,
                    FOUND(p));
  }
  return next(p);
}

/* Lists the names of an enum's values ("MAX, AVE, STOCHASTIC") for messages. */
static void enum_names(const ProtobufCEnumDescriptor *ed, char *buf, size_t cap) {
  size_t at = 0;
  buf[0] = '\0';
  for (unsigned i = 0; i < ed->n_values && at + 1 < cap; i++) {
    int n = snprintf(buf + at, cap - at, "%s%s", i ? ", " : "", ed->values[i].name);
    if (n < 0 || (size_t)n >= cap - at) {
      buf[at] = '\0';
      break;
    }
    at += (size_t)n;
  }
}

static crema_status parse_enum(parser *p, const ProtobufCFieldDescriptor *f, int32_t *out) {
  char found_buf[128], names[512];
  const ProtobufCEnumDescriptor *ed = f->descriptor;
  const ProtobufCEnumValue *ev = NULL;
  token first = p->tok;
  if (p->tok.kind == TOK_IDENT) {
    char name[TXT_MAX_NAME];
    if (tok_copy_name(p, &p->tok, name, sizeof name))
      ev = protobuf_c_enum_descriptor_get_value_by_name(ed, name);
    if (ev == NULL) {
      enum_names(ed, names, sizeof names);
      return FAIL_TOK(p, &first, "unknown value %s for enum field '%s' (%s); expected one of: %s",
                      FOUND(p), f->name, ed->name, names);
    }
    *out = ev->value;
    return next(p);
  }
  if (p->tok.kind != TOK_INT && !at_symbol(p, '-')) {
    enum_names(ed, names, sizeof names);
    return FAIL_TOK(p, &first, "expected a value for enum field '%s' (one of: %s), found %s",
                    f->name, names, FOUND(p));
  }
  int64_t v;
  CREMA_TRY(parse_signed(p, f, "enum", INT32_MAX, &v));
  if (protobuf_c_enum_descriptor_get_value(ed, (int)v) == NULL) {
    enum_names(ed, names, sizeof names);
    return FAIL_TOK(p, &first, "unknown value %lld for enum field '%s' (%s); expected one of: %s",
                    (long long)v, f->name, ed->name, names);
  }
  *out = (int32_t)v;
  return CREMA_OK;
}

typedef union value {
  int32_t i32;
  uint32_t u32;
  int64_t i64;
  uint64_t u64;
  float f;
  double d;
  protobuf_c_boolean b;
  char *s;
  ProtobufCBinaryData bytes;
} value;

static crema_status parse_scalar(parser *p, const ProtobufCFieldDescriptor *f, value *v) {
  int64_t i;
  uint64_t u;
  double d;
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
      CREMA_TRY(parse_signed(p, f, "int32", INT32_MAX, &i));
      v->i32 = (int32_t)i;
      return CREMA_OK;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      return parse_signed(p, f, "int64", INT64_MAX, &v->i64);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      CREMA_TRY(parse_unsigned(p, f, "uint32", UINT32_MAX, &u));
      v->u32 = (uint32_t)u;
      return CREMA_OK;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      return parse_unsigned(p, f, "uint64", UINT64_MAX, &v->u64);
    case PROTOBUF_C_TYPE_FLOAT:
      CREMA_TRY(parse_double(p, f, "float", &d));
      v->f = (float)d;
      return CREMA_OK;
    case PROTOBUF_C_TYPE_DOUBLE:
      return parse_double(p, f, "double", &v->d);
    case PROTOBUF_C_TYPE_BOOL:
      return parse_bool(p, f, &v->b);
    case PROTOBUF_C_TYPE_ENUM:
      return parse_enum(p, f, &v->i32);
    case PROTOBUF_C_TYPE_STRING: {
      token first = p->tok;
      size_t n;
      CREMA_TRY(parse_string_value(p, f, &v->s, &n));
      if (strlen(v->s) != n) {
        free(v->s);
        return FAIL_TOK(p, &first, "string field '%s' cannot hold a NUL byte (use a bytes field)",
                        f->name);
      }
      return CREMA_OK;
    }
    case PROTOBUF_C_TYPE_BYTES: {
      char *data;
      CREMA_TRY(parse_string_value(p, f, &data, &v->bytes.len));
      v->bytes.data = (uint8_t *)data;
      return CREMA_OK;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
      break;
  }
  return FAIL_TOK(p, &p->tok, "field '%s' has an unsupported type", f->name);
}

static void free_value(const ProtobufCFieldDescriptor *f, value *v) {
  if (f->type == PROTOBUF_C_TYPE_STRING)
    free(v->s);
  else if (f->type == PROTOBUF_C_TYPE_BYTES)
    free(v->bytes.data);
}

/* ---- storing into messages ---- */

static void *member(ProtobufCMessage *m, unsigned offset) { return (char *)m + offset; }

/* Arrays this parser grows double whenever the count reaches a power of
 * two, so the capacity follows from the count (no side table) and appending
 * costs amortised O(1). */
static int count_fills_capacity(size_t n) { return (n & (n - 1)) == 0; }

/* Room for one more element of repeated field f; the count is not changed. */
static crema_status reserve_repeated(parser *p, ProtobufCMessage *m,
                                     const ProtobufCFieldDescriptor *f, const token *at,
                                     void **slot) {
  size_t n = *(size_t *)member(m, f->quantifier_offset);
  char **arr = member(m, f->offset);
  size_t size = pb_type_size(f->type);
  if (count_fills_capacity(n)) {
    size_t cap, bytes;
    if (!size_mul(n ? n : 1, 2, &cap) || !size_mul(cap, size, &bytes))
      return fail_nomem(p, at, "for a repeated field");
    char *grown = realloc(*arr, bytes);
    if (grown == NULL)
      return fail_nomem(p, at, "for a repeated field");
    *arr = grown;
  }
  *slot = *arr + n * size;
  return CREMA_OK;
}

/* Records that non-repeated field f is set (has_ flag or oneof case). */
static void mark_present(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    *(uint32_t *)member(m, f->quantifier_offset) = f->id;
  else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
           f->type != PROTOBUF_C_TYPE_MESSAGE)
    *(protobuf_c_boolean *)member(m, f->quantifier_offset) = 1;
}

static crema_status parse_scalar_field(parser *p, ProtobufCMessage *m,
                                       const ProtobufCFieldDescriptor *f) {
  token at = p->tok;
  value v;
  CREMA_TRY(parse_scalar(p, f, &v));
  size_t size = pb_type_size(f->type);
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    void *slot;
    crema_status st = reserve_repeated(p, m, f, &at, &slot);
    if (st != CREMA_OK) {
      free_value(f, &v);
      return st;
    }
    memcpy(slot, &v, size);
    (*(size_t *)member(m, f->quantifier_offset))++;
  } else {
    memcpy(member(m, f->offset), &v, size);
    mark_present(m, f);
  }
  return CREMA_OK;
}

static crema_status parse_fields(parser *p, ProtobufCMessage *m, char closer, const token *open,
                                 const char *name);

static crema_status parse_message_value(parser *p, ProtobufCMessage *m,
                                        const ProtobufCFieldDescriptor *f) {
  char found_buf[128];
  token open = p->tok;
  char closer = at_symbol(p, '{') ? '}' : at_symbol(p, '<') ? '>' : 0;
  if (closer == 0)
    return FAIL_TOK(p, &open, "expected '{' or '<' to start message field '%s', found %s",
                    f->name, FOUND(p));
  if (p->depth >= TXT_MAX_DEPTH)
    return FAIL_TOK(p, &open, "messages nested deeper than %d levels", TXT_MAX_DEPTH);
  const ProtobufCMessageDescriptor *sd = f->descriptor;
  void *slot = NULL;
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    CREMA_TRY(reserve_repeated(p, m, f, &open, &slot));
  ProtobufCMessage *sub = malloc(sd->sizeof_message);
  if (sub == NULL)
    return fail_nomem(p, &open, "for a message");
  protobuf_c_message_init(sd, sub);
  /* Attached before its fields are parsed, so freeing the root on error
   * frees it too. */
  if (slot != NULL) {
    *(ProtobufCMessage **)slot = sub;
    (*(size_t *)member(m, f->quantifier_offset))++;
  } else {
    *(ProtobufCMessage **)member(m, f->offset) = sub;
    mark_present(m, f);
  }
  CREMA_TRY(next(p));
  p->depth++;
  crema_status st = parse_fields(p, sub, closer, &open, f->name);
  p->depth--;
  return st;
}

static crema_status parse_value(parser *p, ProtobufCMessage *m,
                                const ProtobufCFieldDescriptor *f) {
  if (f->type == PROTOBUF_C_TYPE_MESSAGE)
    return parse_message_value(p, m, f);
  return parse_scalar_field(p, m, f);
}

/* "[a, b, c]" for a repeated field; the '[' is the lookahead. */
static crema_status parse_list(parser *p, ProtobufCMessage *m,
                               const ProtobufCFieldDescriptor *f) {
  char found_buf[128];
  token open = p->tok;
  CREMA_TRY(next(p));
  if (at_symbol(p, ']'))
    return next(p);
  for (;;) {
    CREMA_TRY(parse_value(p, m, f));
    if (at_symbol(p, ']'))
      return next(p);
    if (!at_symbol(p, ','))
      return FAIL_TOK(p, &p->tok,
                      "expected ',' or ']' in the list of field '%s' opened at %zu:%zu, found %s",
                      f->name, open.line, open.col, FOUND(p));
    CREMA_TRY(next(p));
  }
}

static const ProtobufCFieldDescriptor *find_field(const parser *p,
                                                  const ProtobufCMessageDescriptor *d,
                                                  const token *t) {
  char name[TXT_MAX_NAME];
  if (!tok_copy_name(p, t, name, sizeof name))
    return NULL;
  return protobuf_c_message_descriptor_get_field_by_name(d, name);
}

/* The field already selected in f's oneof, if it is not f. */
static const ProtobufCFieldDescriptor *oneof_rival(const ProtobufCMessage *m,
                                                   const ProtobufCFieldDescriptor *f) {
  if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
    return NULL;
  uint32_t chosen = *(const uint32_t *)((const char *)m + f->quantifier_offset);
  if (chosen == 0 || chosen == f->id)
    return NULL;
  return protobuf_c_message_descriptor_get_field(m->descriptor, chosen);
}

/* One "name: value", "name { ... }" or "name: [ ... ]" with its optional
 * trailing ',' or ';'. */
static crema_status parse_field(parser *p, ProtobufCMessage *m, unsigned char *seen) {
  char found_buf[128];
  const ProtobufCMessageDescriptor *d = m->descriptor;
  token name = p->tok;
  const ProtobufCFieldDescriptor *f = find_field(p, d, &name);
  if (f == NULL)
    return FAIL_TOK(p, &name, "no field named %s in message %s", FOUND(p), d->name);
  size_t index = (size_t)(f - d->fields);
  if (seen[index] && f->label != PROTOBUF_C_LABEL_REPEATED)
    return FAIL_TOK(p, &name, "non-repeated field '%s' is specified more than once", f->name);
  const ProtobufCFieldDescriptor *rival = oneof_rival(m, f);
  if (rival != NULL)
    return FAIL_TOK(p, &name, "field '%s' cannot be set together with field '%s' (same oneof)",
                    f->name, rival->name);
  CREMA_TRY(next(p));
  int has_colon = at_symbol(p, ':');
  if (has_colon)
    CREMA_TRY(next(p));
  else if (f->type != PROTOBUF_C_TYPE_MESSAGE)
    return FAIL_TOK(p, &p->tok, "expected ':' after field '%s', found %s", f->name, FOUND(p));
  if (at_symbol(p, '[')) {
    if (f->label != PROTOBUF_C_LABEL_REPEATED)
      return FAIL_TOK(p, &p->tok, "field '%s' is not repeated, so it cannot take a [list]",
                      f->name);
    CREMA_TRY(parse_list(p, m, f));
  } else {
    CREMA_TRY(parse_value(p, m, f));
  }
  seen[index] = 1;
  if (at_symbol(p, ';') || at_symbol(p, ','))
    CREMA_TRY(next(p));
  return CREMA_OK;
}

static crema_status check_required(parser *p, const ProtobufCMessage *m,
                                   const unsigned char *seen, const token *end) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++)
    if (d->fields[i].label == PROTOBUF_C_LABEL_REQUIRED && !seen[i])
      return FAIL_TOK(p, end, "message %s is missing its required field '%s'", d->name,
                      d->fields[i].name);
  return CREMA_OK;
}

static crema_status parse_fields_until(parser *p, ProtobufCMessage *m, char closer,
                                       const token *open, const char *name,
                                       unsigned char *seen) {
  char found_buf[128];
  for (;;) {
    token end = p->tok;
    if (p->tok.kind == TOK_END && closer == 0)
      return check_required(p, m, seen, &end);
    if (closer != 0 && at_symbol(p, closer)) {
      CREMA_TRY(check_required(p, m, seen, &end));
      return next(p);
    }
    if (p->tok.kind == TOK_END)
      return FAIL_TOK(p, &end, "expected '%c' to close field '%s' opened at %zu:%zu, found end "
                      "of file", closer, name, open->line, open->col);
    if (p->tok.kind != TOK_IDENT) {
      if (closer != 0)
        return FAIL_TOK(p, &end, "expected a field name or '%c' to close field '%s' opened at "
                        "%zu:%zu, found %s", closer, name, open->line, open->col, FOUND(p));
      return FAIL_TOK(p, &end, "expected a field name of message %s, found %s",
                      m->descriptor->name, FOUND(p));
    }
    CREMA_TRY(parse_field(p, m, seen));
  }
}

/* The fields of m up to closer ('}' or '>'), or to the end of the input
 * when closer is 0 (the top level). */
static crema_status parse_fields(parser *p, ProtobufCMessage *m, char closer, const token *open,
                                 const char *name) {
  size_t n = m->descriptor->n_fields;
  unsigned char *seen = calloc(n ? n : 1, 1);
  if (seen == NULL)
    return fail_nomem(p, open, "for a message");
  crema_status st = parse_fields_until(p, m, closer, open, name, seen);
  free(seen);
  return st;
}

static crema_status parse_root(parser *p, ProtobufCMessage *root) {
  CREMA_TRY(next(p));
  token start = p->tok;
  return parse_fields(p, root, 0, &start, "");
}

crema_status txt_parse(const char *text, size_t len, const char *filename,
                       const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
                       crema_error *err) {
  if (out == NULL || desc == NULL || (text == NULL && len > 0))
    return crema_fail(err, CREMA_ERR_INVALID, "txt_parse: invalid argument");
  *out = NULL;
  parser p = {.text = text, .len = len, .line = 1, .file = filename ? filename : "<text>",
              .err = err};
  ProtobufCMessage *root = pb_message_new(desc, err);
  if (root == NULL)
    return CREMA_ERR_NOMEM;
  txt_numeric_locale saved = txt_enter_c_locale();
  crema_status st = parse_root(&p, root);
  txt_leave_c_locale(saved);
  if (st != CREMA_OK) {
    protobuf_c_message_free_unpacked(root, NULL);
    return st;
  }
  *out = root;
  return CREMA_OK;
}

crema_status txt_parse_file(const char *path, const ProtobufCMessageDescriptor *desc,
                            ProtobufCMessage **out, crema_error *err) {
  file_view v;
  if (out != NULL)
    *out = NULL;
  if (path == NULL)
    return crema_fail(err, CREMA_ERR_INVALID, "txt_parse_file: no path given");
  CREMA_TRY(file_view_open(path, TXT_MAX_FILE_SIZE, &v, err));
  crema_status st = txt_parse((const char *)v.data, v.size, path, desc, out, err);
  file_view_close(&v);
  return st;
}

crema_status txt_write_file(const char *path, const ProtobufCMessage *msg, crema_error *err) {
  char *text;
  size_t len;
  CREMA_TRY(txt_print(msg, &text, &len, err));
  crema_status st = file_write_atomic(path, text, len, err);
  free(text);
  return st;
}

txt_numeric_locale txt_enter_c_locale(void) {
  txt_numeric_locale s = {(locale_t)0, (locale_t)0};
  s.c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  if (s.c_locale != (locale_t)0)
    s.previous = uselocale(s.c_locale);
  return s;
}

void txt_leave_c_locale(txt_numeric_locale s) {
  if (s.c_locale == (locale_t)0)
    return;
  uselocale(s.previous);
  freelocale(s.c_locale);
}

