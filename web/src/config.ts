/** The app's configuration: written next to the app, from the stack's outputs (AWS) or by the local stack. */

export type AuthConfig =
  | { kind: "local"; signInUrl: string }
  | { kind: "cognito"; domain: string; clientId: string; redirectUri: string; scopes: string[] };

export interface AppConfig {
  apiUrl: string; // "" when the API is served from the app's own origin (the local stack)
  auth: AuthConfig;
  maxPhotoBytes: number;
  photosNeeded: number;
  apiReference: string;
}

export async function loadConfig(): Promise<AppConfig> {
  const answer = await fetch("config.json", { cache: "no-store" });
  if (!answer.ok) throw new Error(`config.json: HTTP ${answer.status}`);
  return (await answer.json()) as AppConfig;
}
