/** Signing in: Cognito managed login (authorization code with PKCE) on AWS, a development sign-in locally. */

import type { AppConfig, AuthConfig } from "./config";

export interface Session {
  user: string;
  accessToken: string;
  expiresAt: number; // ms since the epoch
}

const SESSION = "avatar.session";
const VERIFIER = "avatar.pkce";

export function base64url(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A PKCE code verifier: 32 random bytes, base64url (43 characters, RFC 7636). */
export function newVerifier(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** The S256 code challenge of a verifier. */
export async function challengeOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** The `sub` and expiry a JWT carries (not verified here: the API's authorizer verifies it). */
export function claimsOf(token: string): { sub?: string; username?: string; exp?: number } {
  const part = token.split(".")[1] ?? "";
  const padded = part.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (part.length % 4)) % 4);
  try {
    return JSON.parse(atob(padded));
  } catch {
    return {};
  }
}

/** A session for an access token; `shownAs` is how the page names the person (the email or user name they typed). */
export function sessionFromToken(token: string, shownAs: string): Session {
  const claims = claimsOf(token);
  const expiresAt = claims.exp ? claims.exp * 1000 : Date.now() + 3600_000;
  return { user: shownAs || claims.username || claims.sub || "", accessToken: token, expiresAt };
}

export function savedSession(now = Date.now()): Session | null {
  const raw = sessionStorage.getItem(SESSION);
  if (!raw) return null;
  const session = JSON.parse(raw) as Session;
  return session.expiresAt > now + 10_000 ? session : null;
}

export function saveSession(session: Session | null): void {
  if (session) sessionStorage.setItem(SESSION, JSON.stringify(session));
  else sessionStorage.removeItem(SESSION);
}

/** Local stack: a token for a user name from the development issuer. */
export async function signInLocally(auth: Extract<AuthConfig, { kind: "local" }>, user: string): Promise<Session> {
  const answer = await fetch(auth.signInUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user_name: user }),
  });
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Error(body?.error?.message ?? `sign-in failed (HTTP ${answer.status})`);
  return sessionFromToken(body.access_token, user);
}

/** AWS: send the browser to Cognito's managed login with a fresh PKCE verifier. */
export async function startCognitoSignIn(auth: Extract<AuthConfig, { kind: "cognito" }>): Promise<void> {
  const verifier = newVerifier();
  const state = newVerifier();
  sessionStorage.setItem(VERIFIER, JSON.stringify({ verifier, state }));
  const query = new URLSearchParams({
    response_type: "code",
    client_id: auth.clientId,
    redirect_uri: auth.redirectUri,
    scope: auth.scopes.join(" "),
    code_challenge_method: "S256",
    code_challenge: await challengeOf(verifier),
    state,
  });
  location.assign(`${auth.domain}/oauth2/authorize?${query}`);
}

/** AWS: back from managed login with `?code=`: exchange it (with the verifier) for tokens. Null when not a callback. */
export async function finishCognitoSignIn(config: AppConfig): Promise<Session | null> {
  if (config.auth.kind !== "cognito") return null;
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  const saved = sessionStorage.getItem(VERIFIER);
  if (!code || !saved) return null;
  sessionStorage.removeItem(VERIFIER);
  history.replaceState(null, "", location.pathname);
  const { verifier, state } = JSON.parse(saved) as { verifier: string; state: string };
  if (params.get("state") !== state) throw new Error("The sign-in answer did not match this page; sign in again.");
  const answer = await fetch(`${config.auth.domain}/oauth2/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: config.auth.clientId,
      code,
      redirect_uri: config.auth.redirectUri,
      code_verifier: verifier,
    }),
  });
  if (!answer.ok) throw new Error(`Sign-in failed (HTTP ${answer.status}); sign in again.`);
  const tokens = (await answer.json()) as { access_token: string; id_token?: string };
  // The access token names the user by an opaque id; the ID token carries the email they signed in with.
  const email = tokens.id_token ? (claimsOf(tokens.id_token) as { email?: string }).email : undefined;
  return sessionFromToken(tokens.access_token, email ?? "");
}

/** Where the browser goes to sign out (Cognito ends its own session too), or null to stay on the page. */
export function signOutUrl(auth: AuthConfig): string | null {
  if (auth.kind !== "cognito") return null;
  const query = new URLSearchParams({ client_id: auth.clientId, logout_uri: auth.redirectUri });
  return `${auth.domain}/logout?${query}`;
}
