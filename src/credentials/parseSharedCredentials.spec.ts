import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseIniSections, parseSharedCredentials } from "./parseSharedCredentials.js";

const KEY = "AKIAIOSFODNN7EXAMPLE";
const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE+/=";

describe("parseSharedCredentials", () => {
  const ok = [
    {
      name: "a plain [default] section",
      text: `[default]\naws_access_key_id = ${KEY}\naws_secret_access_key = ${SECRET}\n`,
      profile: "default",
      want: { accessKeyId: KEY, secretAccessKey: SECRET },
    },
    {
      name: "a session token",
      text: `[default]\naws_access_key_id=${KEY}\naws_secret_access_key=${SECRET}\naws_session_token=${TOKEN}`,
      profile: "default",
      want: { accessKeyId: KEY, secretAccessKey: SECRET, sessionToken: TOKEN },
    },
    {
      name: "the [profile name] spelling",
      text: `[profile prod]\naws_access_key_id = ${KEY}\naws_secret_access_key = ${SECRET}\n`,
      profile: "prod",
      want: { accessKeyId: KEY, secretAccessKey: SECRET },
    },
    {
      name: "whole-line # and ; comments, blank lines and odd whitespace",
      text: `# top\n\n  [ prod ]  \n; note\n\taws_access_key_id\t=\t${KEY}  \n   aws_secret_access_key =    ${SECRET}\n# end`,
      profile: "prod",
      want: { accessKeyId: KEY, secretAccessKey: SECRET },
    },
    {
      name: "inline comments after whitespace",
      text: `[prod] # main\naws_access_key_id = ${KEY} # rotated monthly\naws_secret_access_key = ${SECRET} ; keep safe\n`,
      profile: "prod",
      want: { accessKeyId: KEY, secretAccessKey: SECRET },
    },
    {
      name: "CRLF line ends and a byte order mark",
      text: `\uFEFF[default]\r\naws_access_key_id = ${KEY}\r\naws_secret_access_key = ${SECRET}\r\n`,
      profile: "default",
      want: { accessKeyId: KEY, secretAccessKey: SECRET },
    },
    {
      name: "upper-case key names",
      text: `[default]\nAWS_ACCESS_KEY_ID = ${KEY}\nAws_Secret_Access_Key = ${SECRET}\n`,
      profile: "default",
      want: { accessKeyId: KEY, secretAccessKey: SECRET },
    },
    {
      name: "the wanted profile among others, keys not leaking between sections",
      text: `[a]\naws_access_key_id = A\naws_secret_access_key = SA\naws_session_token = TA\n[b]\naws_access_key_id = ${KEY}\naws_secret_access_key = ${SECRET}\n`,
      profile: "b",
      want: { accessKeyId: KEY, secretAccessKey: SECRET },
    },
    {
      name: "a repeated section merges, the later value winning",
      text: `[p]\naws_access_key_id = OLD\n[q]\nx = 1\n[p]\naws_access_key_id = ${KEY}\naws_secret_access_key = ${SECRET}\n`,
      profile: "p",
      want: { accessKeyId: KEY, secretAccessKey: SECRET },
    },
    {
      name: "nested config-file settings skipped",
      text: `[default]\ns3 =\n  aws_access_key_id = NESTED\naws_access_key_id = ${KEY}\naws_secret_access_key = ${SECRET}\n`,
      profile: "default",
      want: { accessKeyId: KEY, secretAccessKey: SECRET },
    },
    {
      name: "a value containing '=' and '/'",
      text: `[default]\naws_access_key_id = ${KEY}\naws_secret_access_key = ab/cd=ef+gh==\n`,
      profile: "default",
      want: { accessKeyId: KEY, secretAccessKey: "ab/cd=ef+gh==" },
    },
  ];

  it.each(ok)("reads $name", ({ text, profile, want }) => {
    expect(parseSharedCredentials(text, profile)).toEqual({ ok: true, credentials: want });
  });

  const bad = [
    { name: "a missing profile", text: `[other]\naws_access_key_id = ${KEY}\n`, profile: "prod", error: "profile [prod] not found" },
    { name: "an empty file", text: "", profile: "default", error: "profile [default] not found" },
    {
      name: "a half-written profile without its secret",
      text: `[default]\naws_access_key_id = ${KEY}\n`,
      profile: "default",
      error: "profile [default] has no aws_secret_access_key",
    },
    {
      name: "a profile with neither key",
      text: `[default]\nregion = us-east-1\n`,
      profile: "default",
      error: "profile [default] has no aws_access_key_id or aws_secret_access_key",
    },
    {
      name: "an empty secret",
      text: `[default]\naws_access_key_id = ${KEY}\naws_secret_access_key =\n`,
      profile: "default",
      error: "profile [default] has no aws_secret_access_key",
    },
    {
      name: "keys before any section",
      text: `aws_access_key_id = ${KEY}\naws_secret_access_key = ${SECRET}\n`,
      profile: "default",
      error: "profile [default] not found",
    },
  ];

  it.each(bad)("rejects $name without quoting any value", ({ text, profile, error }) => {
    const result = parseSharedCredentials(text, profile);
    expect(result).toEqual({ ok: false, error });
    expect(JSON.stringify(result)).not.toContain(KEY);
  });
});

describe("parseIniSections (property)", () => {
  const word = fc.stringMatching(/^[A-Za-z0-9_.-]{1,20}$/);
  const value = fc.stringMatching(/^[A-Za-z0-9/+=]{1,60}$/);
  const spacing = fc.constantFrom("", " ", "  ", "\t");
  const comment = fc.constantFrom("", "# c", "; c");
  const eol = fc.constantFrom("\n", "\r\n");

  it("reads back every key and value of a rendered file, whatever the spacing, comments and line ends", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(word, fc.dictionary(word, value, { minKeys: 1, maxKeys: 5 }), fc.boolean()), {
          selector: ([name]) => name,
          maxLength: 4,
        }),
        spacing,
        comment,
        eol,
        (sections, sp, cm, nl) => {
          const text = sections
            .map(([name, entries, profilePrefix]) =>
              [
                cm,
                `${sp}[${profilePrefix ? "profile " : ""}${name}]${sp}`,
                ...Object.entries(entries).map(([k, v]) => `${sp}${k}${sp}=${sp}${v}${sp}`),
              ].join(nl),
            )
            .join(nl);
          const parsed = parseIniSections(text);
          for (const [name, entries] of sections) {
            const section = parsed.get(name);
            const want = new Map(Object.entries(entries).map(([k, v]) => [k.toLowerCase(), v]));
            // Keys differing only in case collapse to the last one written.
            for (const [k, v] of Object.entries(entries)) want.set(k.toLowerCase(), v);
            expect(section).toEqual(want);
          }
        },
      ),
    );
  });
});
