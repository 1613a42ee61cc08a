-- Signing keys of the `idtoken` var source, shared by every web node: each row is a private
-- JWK (JSON text), kty `RSA` or `EC`. The newest key of a kty signs; all are published.
CREATE TABLE signing_keys (
    kid text PRIMARY KEY,
    kty text NOT NULL,
    jwk text NOT NULL,
    created_at bigint NOT NULL
);
