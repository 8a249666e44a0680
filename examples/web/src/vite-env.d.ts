/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** smsauth's GraphQL endpoint, e.g. https://auth.example.com/graphql. */
  readonly VITE_SMSAUTH_URL?: string;
}
