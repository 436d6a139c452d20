// Chat templates: the Jinja interpreter (features, errors with positions, limits against
// hostile templates), the real templates of each family rendered against expected strings,
// family detection, and the C API v4_chat_apply_template.
#include <v4engine.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "lib/core/error.h"
#include "lib/text/chat_template.h"
#include "lib/text/jinja/interpreter.h"
#include "lib/text/jinja/json.h"

using v4::ChatMessage;
using v4::Status;
using v4::jinja::Dict;
using v4::jinja::Template;
using v4::jinja::Value;

namespace {

const std::string kDir = std::string(V4_TEST_DATA_DIR) + "/chat_templates/";

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Renders `src` with variables given as a JSON object.
std::string render(const std::string& src, const std::string& vars = "{}",
                   const v4::jinja::Limits& limits = {}) {
  return Template(src, limits).render(v4::jinja::parse_json(vars).dict());
}

// The v4::Error message of rendering `src` (fails the test when it renders).
std::string render_error(const std::string& src, const std::string& vars = "{}",
                         const v4::jinja::Limits& limits = {}) {
  try {
    render(src, vars, limits);
  } catch (const v4::Error& e) {
    CHECK(e.status() == Status::bad_format);
    return e.what();
  }
  FAIL("expected an error from: " << src);
  return {};
}

std::vector<ChatMessage> conversation() {
  return {{"system", "You are a helpful assistant"},
          {"user", "Hello"},
          {"assistant", "Hi there"},
          {"user", "Who are you"},
          {"assistant", "   I am an assistant   "},
          {"user", "Another question"}};
}

}  // namespace

// ---- interpreter features -------------------------------------------------------------------

TEST_CASE("jinja: text, output, comments and literals", "[chat_template]") {
  CHECK(render("plain text") == "plain text");
  CHECK(render("a{# comment #}b") == "ab");
  CHECK(render("{{ 'x' }}{{ \"y\" }}{{ 1 }}{{ 2.5 }}{{ true }}{{ none }}{{ False }}") ==
        "xy12.5TrueNoneFalse");
  CHECK(render("{{ 'a\\nb\\t\\'\\\"\\\\\\x41\\u00e9' }}") == "a\nb\t'\"\\A\xC3\xA9");
  CHECK(render("{{ 'ab' 'cd' }}") == "abcd");
  CHECK(render("{{ [1, 'a', none, [true]] }}") == "[1, 'a', None, [True]]");
  CHECK(render("{{ {'a': 1, 'b': \"it's\"} }}") == "{'a': 1, 'b': \"it's\"}");
  CHECK(render("{{ 1e20 }} {{ 0.1 }} {{ 1.0 }} {{ 1_000 }}") == "1e+20 0.1 1.0 1000");
  CHECK(render("{{ undefined_thing }}") == "");
}

TEST_CASE("jinja: whitespace control as Hugging Face configures it", "[chat_template]") {
  // trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before it.
  CHECK(render("{% if true %}\n  yes\n{% endif %}\nend") == "  yes\nend");
  CHECK(render("line\n    {% if true %}x{% endif %}") == "line\nx");
  CHECK(render("a  {%- if true -%}  b  {%- endif -%}  c") == "abc");
  CHECK(render("a  {{- 'b' -}}  c") == "abc");
  CHECK(render("a {{ 'b' }}\nc") == "a b\nc");  // no trimming after {{ }}
  CHECK(render("a\n{#- c -#}\n b") == "ab");
  CHECK(render("x\n  {%+ if true %}y{% endif %}") == "x\n  y");
  CHECK(render("{% if true +%}\ny{% endif %}") == "\ny");
  CHECK(render("one trailing newline is dropped\n") == "one trailing newline is dropped");
  CHECK(render("a\r\nb") == "a\nb");
}

TEST_CASE("jinja: for loops and loop variables", "[chat_template]") {
  CHECK(render("{% for x in [1, 2, 3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}"
               "{{ loop.last }}{{ loop.length }}{{ loop.revindex }};{% endfor %}") ==
        "10TrueFalse33;21FalseFalse32;32FalseTrue31;");
  CHECK(render("{% for x in [] %}a{% else %}empty{% endfor %}") == "empty");
  CHECK(render("{% for x in range(10) if x is odd %}{{ x }}{% endfor %}") == "13579");
  CHECK(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }},{% endfor %}") ==
        "a=1,b=2,");
  CHECK(render("{% for k in {'a': 1, 'b': 2} %}{{ k }}{% endfor %}") == "ab");
  CHECK(render("{% for c in 'h\xC3\xA9' %}[{{ c }}]{% endfor %}") == "[h][\xC3\xA9]");
  CHECK(
      render("{% for x in [1,2,3,4] %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %}") ==
      "12");
  CHECK(
      render("{% for x in [1,2,3] %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% endfor %}") ==
      "13");
  CHECK(render(
            "{% for x in 'ab' %}{{ loop.previtem }}|{{ loop.nextitem }}|{{ loop.cycle('o', 'e') }};"
            "{% endfor %}") == "|b|o;a||e;");
  CHECK(render("{% for a in [1,2] %}{% for b in [3] %}{{ loop.index }}{% endfor %}{{ loop.index }}"
               "{% endfor %}") == "1112");
  CHECK(render("{% for x in undefined_list %}x{% endfor %}") == "");
}

TEST_CASE("jinja: if/elif/else, set and scoping, namespaces", "[chat_template]") {
  CHECK(render("{% if 0 %}a{% elif '' %}b{% elif [1] %}c{% else %}d{% endif %}") == "c");
  CHECK(render("{% set x = 1 %}{% set y, z = 2, 3 %}{{ x }}{{ y }}{{ z }}") == "123");
  // A set inside a loop does not leak out of it (that is what namespace() is for).
  CHECK(render("{% set found = false %}{% for m in [1] %}{% set found = true %}{% endfor %}"
               "{{ found }}") == "False");
  CHECK(render("{% set ns = namespace(found=false, n=0) %}{% for m in [1, 2] %}"
               "{% set ns.found = true %}{% set ns.n = ns.n + m %}{% endfor %}{{ ns.found }}{{ "
               "ns.n }}") == "True3");
  CHECK(render("{% set ns = namespace() %}{% set ns.a = 'x' %}{{ ns.a }}") == "x");
  CHECK(render("{% set block %}in {{ 'block' }}{% endset %}[{{ block }}]") == "[in block]");
  CHECK(render("{% set messages = messages[1:] %}{{ messages|length }}",
               R"({"messages": [1, 2, 3]})") == "2");
}

TEST_CASE("jinja: expressions and operators", "[chat_template]") {
  CHECK(render("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} "
               "{{ 7 / 2 }} {{ 2 ** 10 }} {{ -3 }}") == "7 9 3 -4 2 3.5 1024 -3");
  CHECK(render("{{ 'a' + 'b' }} {{ 'a' ~ 1 ~ none }} {{ 'ab' * 3 }} {{ [1] + [2] }}") ==
        "ab a1None ababab [1, 2]");
  CHECK(render("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' == 'a' }} {{ 1 == 1.0 }} {{ 1 != 2 }}") ==
        "True False True True True");
  CHECK(render("{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }}") ==
        "True True True True");
  CHECK(render("{{ not true }} {{ true and 'x' }} {{ 0 or 'y' }} {{ none or [] }}") ==
        "False x y []");
  CHECK(render("{{ 'yes' if 1 else 'no' }}{{ 'yes' if 0 else 'no' }}[{{ 'only' if 0 }}]") ==
        "yesno[]");
  CHECK(render("{{ [1, 2, 3][0] }}{{ [1, 2, 3][-1] }}{{ [1][5] }}") == "13");
  CHECK(render("{{ {'a': {'b': 5}}['a'].b }}{{ 'abc'[1] }}{{ [1,2].0 }}") == "5b1");
  CHECK(
      render("{{ [1,2,3,4][1:] }}{{ [1,2,3,4][::-1] }}{{ [1,2,3,4][:-1] }}{{ [1,2,3,4][::2] }}") ==
      "[2, 3, 4][4, 3, 2, 1][1, 2, 3][1, 3]");
  CHECK(render("{{ 'h\xC3\xA9llo'[1:3] }}{{ 'abc'[::-1] }}") == "\xC3\xA9lcba");
  CHECK(render("{{ messages[0]['role'] }}{{ messages[0].content }}",
               R"({"messages": [{"role": "user", "content": "hi"}]})") == "userhi");
  CHECK(render("{{ ([1] * 3)|length }} {{ 10 - 2.5 }} {{ true + 1 }}") == "3 7.5 2");
}

TEST_CASE("jinja: tests", "[chat_template]") {
  CHECK(render("{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 'a' is string }}"
               "{{ 1 is number }}{{ 1 is integer }}{{ 1.5 is float }}{{ true is boolean }}") ==
        "FalseTrueTrueTrueTrueTrueTrueTrue");
  CHECK(render("{{ {} is mapping }}{{ [] is iterable }}{{ 'a' is iterable }}{{ 1 is iterable }}"
               "{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}") ==
        "TrueTrueTrueFalseTrueTrueTrueFalse");
  CHECK(render("{{ 1 is not none }}{{ x is not defined }}{{ 'a' is equalto 'a' }}"
               "{{ false is sameas false }}{{ 'ab' is lower }}{{ 'AB' is upper }}") ==
        "TrueTrueTrueTrueTrueTrue");
}

TEST_CASE("jinja: filters", "[chat_template]") {
  CHECK(render("[{{ '  a b  '|trim }}][{{ 'xxaxx'|trim('x') }}]") == "[a b][a]");
  CHECK(render("{{ 'abc'|length }}{{ [1,2]|length }}{{ {'a':1}|count }}{{ x|length }}") == "3210");
  CHECK(render("{{ 'aBc'|upper }}{{ 'aBc'|lower }}{{ 'hello world'|capitalize }}"
               "{{ 'hello wORLD'|title }}") == "ABCabcHello worldHello World");
  CHECK(render("{{ [1, 'a']|join('-') }}{{ ['x', 'y']|join }}") == "1-axy");
  CHECK(render("{{ x|default('d') }}{{ ''|default('e', true) }}{{ 'v'|d('w') }}") == "dev");
  CHECK(render("{{ [3, 1, 2]|first }}{{ [3, 1, 2]|last }}{{ 'xyz'|first }}") == "32x");
  CHECK(render("{{ 'a-b-c'|replace('-', '+') }}{{ 'aaa'|replace('a', 'b', 2) }}") == "a+b+cbba");
  CHECK(render("{{ 5|string ~ 'x' }}{{ '42'|int + 1 }}{{ 'x'|int(7) }}{{ 3.9|int }}") == "5x4373");
  CHECK(render("{{ '2.5'|float }}{{ 'ab'|list }}{{ {'a': 1}|items|list }}") ==
        "2.5['a', 'b'][['a', 1]]");
  CHECK(render("{{ {'b': [1, 'x'], 'a': none}|tojson }}") == "{\"b\": [1, \"x\"], \"a\": null}");
  CHECK(render("{{ {'a': [1]}|tojson(indent=2) }}") == "{\n  \"a\": [\n    1\n  ]\n}");
  CHECK(render("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}{{ '\"\xC3\xA9\\n'|tojson }}") ==
        "{\"a\": 2, \"b\": 1}\"\\\"\xC3\xA9\\n\"");
  const std::string msgs =
      R"({"m": [{"role": "system", "c": 1}, {"role": "user", "c": 2}, {"role": "user", "c": 3, "t": [1]}]})";
  CHECK(render("{{ m|selectattr('role', 'equalto', 'user')|map(attribute='c')|list }}", msgs) ==
        "[2, 3]");
  CHECK(render("{{ m|rejectattr('role', 'equalto', 'user')|map(attribute='c')|list }}", msgs) ==
        "[1]");
  CHECK(
      render("{{ m|selectattr('t', 'undefined')|list|length }}{{ m|selectattr('t')|list|length }}",
             msgs) == "21");
  CHECK(render(
            "{{ [1, 2, 3, 4]|select('even')|list }}{{ ['a', 'b']|reject('equalto', 'a')|list }}") ==
        "[2, 4]['b']");
  CHECK(
      render("{{ ['a', 'B']|map('upper')|join }}{{ [3, 1, 2]|sort }}{{ [1, 1, 2]|unique|list }}") ==
      "AB[1, 2, 3][1, 2]");
  CHECK(render("{{ [1, 2]|reverse|list }}{{ 'abc'|reverse }}{{ [1, 5, 3]|max }}{{ [4, 2]|min }}"
               "{{ [1, 2]|sum }}") == "[2, 1]cba523");
  CHECK(render("{{ 'a\\nb'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}") == "a\n  b|  a\n  b");
  CHECK(render("{{ -3|abs }}{{ 2.567|round(1) }}{{ {'b': 1, 'a': 2}|dictsort }}") ==
        "32.6[['a', 2], ['b', 1]]");
  CHECK(render("{% filter upper %}shout {{ 'this' }}{% endfilter %}") == "SHOUT THIS");
}

TEST_CASE("jinja: string and dict methods", "[chat_template]") {
  CHECK(render("[{{ '  x  '.strip() }}][{{ '  x  '.lstrip() }}][{{ '  x  '.rstrip() }}]"
               "[{{ '--x--'.strip('-') }}]") == "[x][x  ][  x][x]");
  CHECK(render("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith('bc') }}{{ 'abc'.startswith(('x', "
               "'a')) }}") == "TrueTrueTrue");
  CHECK(render("{{ 'a,b,,c'.split(',') }}{{ '  a  b '.split() }}{{ 'a b c'.split(' ', 1) }}") ==
        "['a', 'b', '', 'c']['a', 'b']['a', 'b c']");
  CHECK(
      render(
          "{{ 'x</think>y</think>z'.split('</think>')[-1] }}{{ 'aBc'.upper() }}{{ 'aBc'.lower() }}"
          "{{ 'ab cd'.title() }}{{ 'aXa'.replace('a', 'b') }}") == "zABCabcAb CdbXb");
  CHECK(render("{{ '-'.join(['a', 'b']) }}{{ 'banana'.count('a') }}{{ 'banana'.find('n') }}") ==
        "a-b32");
  CHECK(render("{{ d.get('a') }}{{ d.get('z') }}{{ d.get('z', 9) }}{{ d.keys()|list }}"
               "{{ d.values()|list }}{{ d.items()|list }}",
               R"({"d": {"a": 1, "b": 2}})") == "1None9['a', 'b'][1, 2][['a', 1], ['b', 2]]");
}

TEST_CASE("jinja: macros, globals and raise_exception", "[chat_template]") {
  CHECK(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
               "{{ greet('Bob') }} {{ greet('Al', punct='?') }}") == "Hi Bob! Hi Al?");
  CHECK(render("{{ range(3)|list }}{{ range(1, 7, 2)|list }}{{ range(3, 0, -1)|list }}") ==
        "[0, 1, 2][1, 3, 5][3, 2, 1]");
  CHECK(render("{{ dict(a=1, b='x') }}") == "{'a': 1, 'b': 'x'}");
  const std::string err = render_error("ok\n{{ raise_exception('Roles must alternate') }}");
  CHECK(err.find("line 2, column 4") != std::string::npos);
  CHECK(err.find("raise_exception: Roles must alternate") != std::string::npos);
  // A raise in a branch not taken costs nothing.
  CHECK(render("{% if false %}{{ raise_exception('no') }}{% endif %}ok") == "ok");
}

TEST_CASE("jinja: errors name the line and column", "[chat_template]") {
  auto parse_error = [](const std::string& src) -> std::string {
    try {
      Template t(src);
    } catch (const v4::Error& e) {
      CHECK(e.status() == Status::bad_format);
      return e.what();
    }
    FAIL("expected a parse error from: " << src);
    return {};
  };
  std::string e = parse_error("hello\n{% if x %}\nno end");
  CHECK(e.find("line 2, column 1") != std::string::npos);
  CHECK(e.find("never closed") != std::string::npos);
  e = parse_error("a\nb {{ x | nosuchfilter }}");
  CHECK(e.find("line 2, column 10") != std::string::npos);
  CHECK(e.find("no filter named 'nosuchfilter'") != std::string::npos);
  e = parse_error("{{ x is nosuchtest }}");
  CHECK(e.find("no test named 'nosuchtest'") != std::string::npos);
  CHECK(parse_error("{{ 'unterminated }}").find("unterminated string") != std::string::npos);
  CHECK(parse_error("{{ 1 + }}").find("line 1, column 8") != std::string::npos);
  CHECK(parse_error("{% endfor %}").find("unexpected 'endfor'") != std::string::npos);
  CHECK(parse_error("{% include 'x' %}").find("not supported") != std::string::npos);
  CHECK(parse_error("{% break %}").find("outside a loop") != std::string::npos);
  CHECK(parse_error("{{ x").find("never closed") != std::string::npos);
  CHECK(parse_error("{# open").find("unterminated comment") != std::string::npos);
  CHECK(parse_error("{{ x @ y }}").find("unexpected character '@'") != std::string::npos);
  // Run-time errors.
  e = render_error("{% set a = {} %}\n  {{ a.b.c }}");
  CHECK(e.find("line 2, column 6: 'b' is undefined") != std::string::npos);
  CHECK(render_error("{{ a.b }}").find("'a' is undefined") != std::string::npos);
  CHECK(render_error("{{ 1 + 'a' }}").find("unsupported operand") != std::string::npos);
  CHECK(render_error("{{ 1 // 0 }}").find("division by zero") != std::string::npos);
  CHECK(render_error("{% for x in 5 %}{% endfor %}").find("not iterable") != std::string::npos);
  CHECK(render_error("{% set x = 1 %}{% set x.a = 2 %}").find("not a namespace") !=
        std::string::npos);
  CHECK(render_error("{{ 9223372036854775807 + 1 }}").find("overflow") != std::string::npos);
}

TEST_CASE("jinja: hostile templates hit limits instead of hanging or crashing", "[chat_template]") {
  // Loops: 10^12 iterations requested.
  CHECK(render_error("{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}"
                     "{% endfor %}")
            .find("loop limit") != std::string::npos);
  CHECK(render_error("{% for i in range(100000000) %}{% endfor %}").find("loop limit") !=
        std::string::npos);
  // Output and string growth.
  CHECK(render_error("{% for i in range(1000000) %}{{ 'x' * 100 }}{% endfor %}").find("exceeds") !=
        std::string::npos);
  CHECK(render_error("{% set ns = namespace(s='ab') %}{% for i in range(100) %}"
                     "{% set ns.s = ns.s + ns.s %}{% endfor %}")
            .find("exceeds") != std::string::npos);
  CHECK(render_error("{{ 'x' * 100000000000 }}").find("exceeds") != std::string::npos);
  CHECK(render_error("{{ ([1] * 100000000)|length }}").find("exceeds") != std::string::npos);
  // Nesting: blocks, expressions, values, macro recursion.
  std::string deep_if;
  for (int i = 0; i < 100; ++i) deep_if += "{% if true %}";
  for (int i = 0; i < 100; ++i) deep_if += "{% endif %}";
  CHECK_THROWS_WITH(Template(deep_if), Catch::Contains("nested more than 64"));
  CHECK_THROWS_WITH(
      Template("{{ " + std::string(10000, '(') + "1" + std::string(10000, ')') + " }}"),
      Catch::Contains("nested more than 64"));
  CHECK_THROWS_WITH(Template("{{ " + std::string(10000, '[') + std::string(10000, ']') + " }}"),
                    Catch::Contains("nested more than 64"));
  CHECK_THROWS_WITH(Template("{{ " + std::string(100000, '-') + "1 }}"),
                    Catch::Contains("nested more than 64"));
  CHECK(render_error("{% set ns = namespace(l=[]) %}{% for i in range(1000) %}"
                     "{% set ns.l = [ns.l] %}{% endfor %}")
            .find("nested more than 64") != std::string::npos);
  CHECK(
      render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").find("macro calls") !=
      std::string::npos);
  // Exponential macro fan-out is stopped by the evaluation budget (a small one here to keep
  // the test fast; the default is 20M steps).
  v4::jinja::Limits steps;
  steps.max_steps = 1'000'000;
  CHECK(render_error("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
                     "{% endmacro %}{{ f(60) }}",
                     "{}", steps)
            .find("evaluation limit") != std::string::npos);
  // A namespace that contains itself is freed without trouble.
  CHECK(render("{% set ns = namespace() %}{% set ns.me = ns %}{% set ns.l = [ns, ns] %}ok") ==
        "ok");
  // Custom limits apply.
  v4::jinja::Limits small;
  small.max_output_bytes = 10;
  CHECK(render_error("{{ 'x' * 20 }}", "{}", small).find("exceeds the limit of 10") !=
        std::string::npos);
  small = {};
  small.max_loop_iterations = 5;
  CHECK(render("{% for i in range(5) %}{{ i }}{% endfor %}", "{}", small) == "01234");
  CHECK_THROWS(render("{% for i in range(6) %}{{ i }}{% endfor %}", "{}", small));
}

TEST_CASE("jinja: random bytes never crash the parser", "[chat_template]") {
  const std::string alphabet = "{}%#-+()[]'\"|.,:=~*/ abcifnorsetx\n01\\";
  uint64_t seed = 42;
  for (int round = 0; round < 2000; ++round) {
    std::string src;
    const int len = static_cast<int>(seed % 40);
    for (int i = 0; i < len; ++i) {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      src += alphabet[(seed >> 33) % alphabet.size()];
    }
    seed = seed * 6364136223846793005ULL + 1;
    try {
      render(src, R"({"messages": [{"role": "user", "content": "x"}], "x": 1})");
    } catch (const v4::Error& e) {
      CHECK(e.status() == Status::bad_format);
    }
  }
}

// ---- real templates --------------------------------------------------------------------------

TEST_CASE("chat templates: every family renders its expected strings", "[chat_template]") {
  const Value expected = v4::jinja::parse_json(read_file(kDir + "expected.json"));
  REQUIRE(expected.dict().size() >= 14);
  std::vector<ChatMessage> full = conversation();
  std::vector<ChatMessage> no_system(full.begin() + 1, full.end());
  for (const auto& [name_v, e] : expected.dict().entries()) {
    const std::string& name = name_v.str();
    INFO("template " << name);
    const std::string tmpl = read_file(kDir + name + ".jinja");
    const std::string bos = e.dict().find("bos")->str();
    const std::string eos = e.dict().find("eos")->str();
    CHECK(std::string(v4::detect_template_family(tmpl)) == e.dict().find("family")->str());
    struct Case {
      const char* key;
      const std::vector<ChatMessage>* msgs;
      bool gen;
    };
    for (const Case& c : {Case{"system", &full, true}, Case{"no_system", &no_system, true},
                          Case{"no_generation_prompt", &full, false}}) {
      INFO("case " << c.key);
      const Value& want = *e.dict().find(c.key);
      if (want.is_string()) {
        CHECK(v4::apply_chat_template(tmpl, *c.msgs, c.gen, bos, eos) == want.str());
      } else {
        // The template itself refuses this conversation (raise_exception).
        const std::string msg = want.dict().find("error")->str();
        CHECK_THROWS_WITH(v4::apply_chat_template(tmpl, *c.msgs, c.gen, bos, eos),
                          Catch::Contains(msg) && Catch::Contains("line 1, column"));
      }
    }
  }
}

TEST_CASE("chat templates: reference renderings with tools (huggingface.js cases)",
          "[chat_template]") {
  const Value cases = v4::jinja::parse_json(read_file(kDir + "reference_cases.json"));
  REQUIRE(cases.items().size() >= 10);
  for (const Value& c : cases.items()) {
    INFO("case " << c.dict().find("name")->str());
    const Template t(read_file(kDir + c.dict().find("template")->str() + ".jinja"));
    CHECK(t.render(c.dict().find("context")->dict()) == c.dict().find("expected")->str());
  }
}

TEST_CASE("chat templates: family detection", "[chat_template]") {
  CHECK(std::string(v4::detect_template_family("")) == "unknown");
  CHECK(std::string(v4::detect_template_family("{{ messages }}")) == "unknown");
  CHECK(std::string(v4::detect_template_family("<|im_start|>")) == "chatml");
  CHECK(std::string(v4::detect_template_family("[INST] <<SYS>>")) == "llama2");
  CHECK(std::string(v4::detect_template_family("[INST]")) == "mistral");
  CHECK(std::string(v4_chat_template_family(nullptr)) == "unknown");
  CHECK(std::string(v4_chat_template_family("<start_of_turn>")) == "gemma");
}

// ---- C API ----------------------------------------------------------------------------------

TEST_CASE("chat templates: v4_chat_apply_template", "[chat_template]") {
  const std::string tmpl = read_file(kDir + "chatml.jinja");
  const v4_chat_message msgs[] = {{"system", "S"}, {"user", "Hi"}};
  const std::string want =
      "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
      "<|im_start|>assistant\n";
  size_t n = 0;
  // Size query with no buffer, then exact fit, then one byte short.
  CHECK(v4_chat_apply_template(nullptr, tmpl.c_str(), msgs, 2, true, nullptr, 0, &n) ==
        V4_ERR_BUFFER_TOO_SMALL);
  CHECK(n == want.size());
  std::vector<char> buf(n + 1, 'z');
  CHECK(v4_chat_apply_template(nullptr, tmpl.c_str(), msgs, 2, true, buf.data(), buf.size(), &n) ==
        V4_OK);
  CHECK(std::string(buf.data()) == want);
  CHECK(n == want.size());
  CHECK(v4_chat_apply_template(nullptr, tmpl.c_str(), msgs, 2, true, buf.data(), want.size(), &n) ==
        V4_ERR_BUFFER_TOO_SMALL);
  CHECK(n == want.size());
  CHECK(std::string(v4_last_error()).find("too small") != std::string::npos);
  CHECK(v4_chat_apply_template(nullptr, tmpl.c_str(), msgs, 2, false, buf.data(), buf.size(),
                               nullptr) == V4_OK);
  // Errors.
  CHECK(v4_chat_apply_template(nullptr, nullptr, msgs, 2, true, buf.data(), buf.size(), &n) ==
        V4_ERR_INVALID_ARG);
  CHECK(v4_chat_apply_template(nullptr, tmpl.c_str(), nullptr, 2, true, buf.data(), buf.size(),
                               &n) == V4_ERR_INVALID_ARG);
  const v4_chat_message bad[] = {{"user", nullptr}};
  CHECK(v4_chat_apply_template(nullptr, tmpl.c_str(), bad, 1, true, buf.data(), buf.size(), &n) ==
        V4_ERR_INVALID_ARG);
  CHECK(v4_chat_apply_template(nullptr, "{% if %}", msgs, 2, true, buf.data(), buf.size(), &n) ==
        V4_ERR_FORMAT);
  CHECK(std::string(v4_last_error()).find("line 1, column") != std::string::npos);
  CHECK(v4_chat_apply_template(nullptr, "{{ raise_exception('nope') }}", msgs, 2, true, buf.data(),
                               buf.size(), &n) == V4_ERR_FORMAT);
  CHECK(std::string(v4_last_error()).find("nope") != std::string::npos);
  // No messages is fine.
  CHECK(v4_chat_apply_template(nullptr, tmpl.c_str(), nullptr, 0, true, buf.data(), buf.size(),
                               &n) == V4_OK);
  CHECK(std::string(buf.data()) == "<|im_start|>assistant\n");
}

TEST_CASE("chat templates: a model without a template", "[chat_template]") {
  v4_model_params p = v4_model_default_params();
  p.vocab_only = true;
  v4_model* model = nullptr;
  REQUIRE(v4_model_load(V4_MODELS_DIR "/stories260K-f32.gguf", &p, &model) == V4_OK);
  const v4_chat_message msgs[] = {{"user", "Hi"}};
  char buf[256];
  size_t n = 0;
  CHECK(v4_model_chat_template(model) == nullptr);
  CHECK(v4_chat_apply_template(model, nullptr, msgs, 1, true, buf, sizeof buf, &n) ==
        V4_ERR_INVALID_ARG);
  CHECK(std::string(v4_last_error()).find("no chat template") != std::string::npos);
  // An explicit template gets the model's BOS/EOS texts.
  CHECK(v4_chat_apply_template(model, "{{ bos_token }}|{{ eos_token }}", msgs, 1, true, buf,
                               sizeof buf, &n) == V4_OK);
  CHECK(std::string(buf) == "<s>|</s>");
  v4_model_free(model);
}
