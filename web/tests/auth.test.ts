import { describe, expect, it } from "vitest";

import { base64url, challengeOf, claimsOf, newVerifier, sessionFromToken } from "../src/auth";

describe("PKCE (RFC 7636)", () => {
  it("makes the S256 challenge of the RFC's example verifier", async () => {
    // RFC 7636, appendix B.
    expect(await challengeOf("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")).toBe("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  });
  it("makes fresh 43-character verifiers of the allowed alphabet", () => {
    const first = newVerifier();
    expect(first).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newVerifier()).not.toBe(first);
  });
  it("encodes base64url without padding", () => {
    expect(base64url(new Uint8Array([251, 255]))).toBe("-_8");
  });
});

describe("tokens", () => {
  const token = (claims: object) => `h.${base64url(new TextEncoder().encode(JSON.stringify(claims)))}.s`;
  it("reads the user and the expiry", () => {
    expect(claimsOf(token({ sub: "abc", exp: 2000000000 }))).toEqual({ sub: "abc", exp: 2000000000 });
    const access = token({ sub: "abc", username: "u-123", exp: 2000000000 });
    expect(sessionFromToken(access, "")).toEqual({ user: "u-123", accessToken: access, expiresAt: 2000000000000 });
    expect(sessionFromToken(access, "ann@example.com").user).toBe("ann@example.com"); // the ID token's email
  });
  it("reads nothing from a malformed token", () => {
    expect(claimsOf("garbage")).toEqual({});
  });
});
