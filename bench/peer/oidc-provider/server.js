// The token benchmark's peer (bench/token.py): panva's oidc-provider, OpenID-certified, with
// its grants, codes and tokens in Redis, set up to do the portal's work per request: a
// confidential client authenticated with client_secret_basic, PKCE (S256), refresh tokens
// rotated on every use, a signed JWT access token and an ID token carrying the person's claims,
// signed RS256 or ES256 as the client registered.
//
//   node server.js --port 3000 --redis redis://127.0.0.1:6379/0 --secret SECRET
//
// POST /bench/code (not part of any standard, and never timed) mints an authorization code for
// the benchmark's person, as the authorization endpoint would after sign-in and consent, so
// the load generator needs no browser. The process prints "ready" once it listens.

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';

import Redis from 'ioredis';
import Provider from 'oidc-provider';

const { values: options } = parseArgs({
  options: {
    port: { type: 'string', default: '3000' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379/0' },
    secret: { type: 'string', default: 'bench-client-secret' },
    prefix: { type: 'string', default: 'bench-oidc-provider' },
  },
});

const issuer = `http://127.0.0.1:${options.port}`;
const redirect = 'https://bench.example.com/cb';
const resource = 'https://api.bench.example.com';
const redis = new Redis(options.redis, { keyPrefix: `${options.prefix}:` });

// Codes and refresh tokens are consumable: a hash with the payload and, once used, the time
// it was consumed; the rest are plain JSON strings. Everything of a grant is listed under it,
// so revoking the grant (reuse of a code or a spent refresh token) removes it all.
const consumable = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest']);

class RedisAdapter {
  constructor(name) {
    this.name = name;
  }

  key(id) {
    return `${this.name}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const multi = redis.multi();
    if (consumable.has(this.name)) {
      multi.hset(key, { payload: JSON.stringify(payload) });
    } else {
      multi.set(key, JSON.stringify(payload));
    }
    if (expiresIn) {
      multi.expire(key, expiresIn);
    }
    if (payload.grantId) {
      const grantKey = `grant:${payload.grantId}`;
      multi.rpush(grantKey, key);
      if (expiresIn) {
        multi.expire(grantKey, expiresIn, 'GT');
      }
    }
    if (payload.uid) {
      multi.set(`uid:${payload.uid}`, id, 'EX', expiresIn || 3600);
    }
    if (payload.userCode) {
      multi.set(`userCode:${payload.userCode}`, id, 'EX', expiresIn || 3600);
    }
    await multi.exec();
  }

  async find(id) {
    if (consumable.has(this.name)) {
      const { payload, consumed } = await redis.hgetall(this.key(id));
      if (!payload) {
        return undefined;
      }
      return { ...JSON.parse(payload), ...(consumed ? { consumed: Number(consumed) } : {}) };
    }
    const data = await redis.get(this.key(id));
    return data ? JSON.parse(data) : undefined;
  }

  async findByUid(uid) {
    const id = await redis.get(`uid:${uid}`);
    return id ? this.find(id) : undefined;
  }

  async findByUserCode(userCode) {
    const id = await redis.get(`userCode:${userCode}`);
    return id ? this.find(id) : undefined;
  }

  async consume(id) {
    await redis.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
  }

  async destroy(id) {
    await redis.del(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const grantKey = `grant:${grantId}`;
    const keys = await redis.lrange(grantKey, 0, -1);
    // The list holds the keys as this adapter names them; ioredis adds the prefix again.
    await redis.del(...keys, grantKey);
  }
}

const pair = (type, parameters) => generateKeyPairSync(type, parameters).privateKey
  .export({ format: 'jwk' });
const keys = [
  { ...pair('rsa', { modulusLength: 2048 }), alg: 'RS256', use: 'sig', kid: 'rsa' },
  { ...pair('ec', { namedCurve: 'P-256' }), alg: 'ES256', use: 'sig', kid: 'ec' },
];

const client = (alg) => ({
  client_id: `bench-${alg.toLowerCase()}`,
  client_secret: options.secret,
  token_endpoint_auth_method: 'client_secret_basic',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: [redirect],
  id_token_signed_response_alg: alg,
});
const algOf = new Map([['bench-rs256', 'RS256'], ['bench-es256', 'ES256']]);

const provider = new Provider(issuer, {
  adapter: RedisAdapter,
  clients: [client('RS256'), client('ES256')],
  jwks: { keys },
  cookies: { keys: [options.secret] },
  pkce: { required: () => true },
  rotateRefreshToken: true,
  issueRefreshToken: async (ctx, theClient) => theClient.grantTypeAllowed('refresh_token'),
  // The person's claims go into the ID token, as the portal's do.
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'locale', 'updated_at'],
  },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    introspection: { enabled: true },
    // A JWT access token (signed like the client's ID token), as the portal issues.
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator, theClient) => ({
        scope: 'api',
        audience: resource,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: algOf.get(theClient.clientId) || 'RS256' } },
      }),
    },
  },
  // The person lives in Redis too: one hash read per request, like the portal's claims.
  async findAccount(ctx, sub) {
    const person = await redis.hgetall(`account:${sub}`);
    if (!person.email) {
      return undefined;
    }
    return {
      accountId: sub,
      claims: async () => ({
        sub,
        email: person.email,
        email_verified: person.email_verified === 'true',
        name: `${person.given_name} ${person.family_name}`,
        given_name: person.given_name,
        family_name: person.family_name,
        locale: person.locale,
        updated_at: Number(person.updated_at),
      }),
    };
  },
});
provider.proxy = false;

const person = randomUUID();
await redis.hset(`account:${person}`, {
  email: 'bench@example.com', email_verified: 'true', given_name: 'Anna',
  family_name: 'Nowak', locale: 'pl', updated_at: String(Math.floor(Date.now() / 1000)),
});

const scope = 'openid email profile offline_access api';

provider.use(async (ctx, next) => {
  if (ctx.path !== '/bench/code' || ctx.method !== 'POST') {
    return next();
  }
  const url = new URL(ctx.href);
  const clientId = url.searchParams.get('client_id');
  const challenge = url.searchParams.get('code_challenge');
  const grant = new provider.Grant({ accountId: person, clientId });
  grant.addOIDCScope('openid email profile offline_access');
  grant.addResourceScope(resource, 'api');
  const grantId = await grant.save();
  const now = Math.floor(Date.now() / 1000);
  const code = new provider.AuthorizationCode({
    accountId: person,
    acr: 'urn:portal:acr:pwd',
    amr: ['pwd'],
    authTime: now,
    client: await provider.Client.find(clientId),
    codeChallenge: challenge,
    codeChallengeMethod: 'S256',
    grantId,
    nonce: 'n',
    redirectUri: redirect,
    resource,
    scope,
  });
  ctx.body = { code: await code.save() };
  return undefined;
});

provider.listen(Number(options.port), '127.0.0.1', () => {
  console.log('ready');
});
