#!/usr/bin/env node
// Puts Quiver behind a real Apollo Federation 2 gateway, beside a toy subgraph
// that extends Quiver's Dataset entity, and runs queries through the gateway.
//
//   QUIVER_API_KEY=<key> node tests/js/gateway.mjs <quiver-graphql-url> <featured-dataset-id>
//
// (the featured id may also come from FEATURED_DATASET_ID). The toy "reviews"
// subgraph, written with @apollo/subgraph, declares
//
//   type Dataset @key(fields: "id") { id: ID! reviewScore: Float }
//   type Query { featuredDataset: Dataset }
//
// reviewScore is (100 + (sum of the id's code points) % 400) / 100, which a
// Python test can recompute exactly. featuredDataset returns the reference
// { id: <featured id> }, so resolving its `name` makes the gateway call
// Quiver's _entities; listing Quiver's datasets with reviewScore makes it call
// the toy subgraph's _entities. Every request to Quiver (introspection,
// queries, _entities) carries Authorization: Bearer $QUIVER_API_KEY.
//
// stdout gets JSON lines only:
//   {"type":"composed","subgraphs":[...],"supergraphSdl":"..."}
//   {"type":"operation","name":...,"data":...,"errors":...}   (one per query)
//   {"type":"summary","ok":bool,"entityReferencesResolved":[ids the toy resolved]}
// Logs go to stderr. Exit 1 on a composition error or any GraphQL error,
// 2 on bad usage.
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';

const stderrLogger = {
  debug: () => {},
  info: (...args) => console.error('[info]', ...args),
  warn: (...args) => console.error('[warn]', ...args),
  error: (...args) => console.error('[error]', ...args),
};

function emit(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

export function reviewScoreFor(id) {
  let sum = 0;
  for (const ch of String(id)) sum += ch.codePointAt(0);
  return (100 + (sum % 400)) / 100;
}

const REVIEWS_TYPE_DEFS = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])

  "Reviews kept outside Quiver, attached to Quiver's Dataset entity."
  type Dataset @key(fields: "id") {
    id: ID!
    "Average review score, 1.00 to 4.99."
    reviewScore: Float
  }

  type Query {
    "The dataset this subgraph features; only a reference, Quiver resolves the rest."
    featuredDataset: Dataset
  }
`);

function buildReviewsSubgraph(featuredId, resolvedIds) {
  const resolvers = {
    Query: {
      featuredDataset: () => (featuredId ? { id: featuredId } : null),
    },
    Dataset: {
      __resolveReference(reference) {
        resolvedIds.push(reference.id);
        return { id: reference.id };
      },
      reviewScore: (dataset) => reviewScoreFor(dataset.id),
    },
  };
  return buildSubgraphSchema({ typeDefs: REVIEWS_TYPE_DEFS, resolvers });
}

const DATASETS_WITH_REVIEWS = `
  query DatasetsWithReviews {
    datasets(first: 100) {
      totalCount
      edges { node { id name reviewScore } }
    }
  }
`;

const FEATURED_DATASET = `
  query FeaturedDataset {
    featuredDataset { id name reviewScore }
  }
`;

async function postGraphQL(url, operationName, query) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query, operationName }),
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = { errors: [{ message: `gateway answered HTTP ${res.status} with non-JSON: ${text.slice(0, 300)}` }] };
  }
  return { httpStatus: res.status, body };
}

async function main() {
  const [quiverUrl, featuredArg] = process.argv.slice(2);
  const featuredId = featuredArg ?? process.env.FEATURED_DATASET_ID ?? null;
  if (!quiverUrl) {
    console.error('usage: gateway.mjs <quiver-graphql-url> [featured-dataset-id]  (env QUIVER_API_KEY)');
    return 2;
  }
  const apiKey = process.env.QUIVER_API_KEY ?? '';

  const resolvedIds = [];
  const cleanups = [];
  let ok = true;
  try {
    const reviews = new ApolloServer({ schema: buildReviewsSubgraph(featuredId, resolvedIds), logger: stderrLogger });
    const { url: reviewsUrl } = await startStandaloneServer(reviews, { listen: { host: '127.0.0.1', port: 0 } });
    cleanups.push(() => reviews.stop());

    const subgraphs = [
      { name: 'quiver', url: quiverUrl },
      { name: 'reviews', url: reviewsUrl },
    ];
    const gateway = new ApolloGateway({
      logger: stderrLogger,
      supergraphSdl: new IntrospectAndCompose({ subgraphs, logger: stderrLogger }),
      buildService({ name, url }) {
        return new RemoteGraphQLDataSource({
          url,
          willSendRequest({ request }) {
            if (name === 'quiver' && apiKey) {
              request.http.headers.set('Authorization', `Bearer ${apiKey}`);
            }
          },
        });
      },
    });
    let supergraphSdl = null;
    gateway.onSchemaLoadOrUpdate(({ coreSupergraphSdl }) => {
      supergraphSdl = coreSupergraphSdl;
    });

    const server = new ApolloServer({ gateway, logger: stderrLogger, includeStacktraceInErrorResponses: false });
    let gatewayUrl;
    try {
      ({ url: gatewayUrl } = await startStandaloneServer(server, { listen: { host: '127.0.0.1', port: 0 } }));
    } catch (err) {
      // IntrospectAndCompose failures (unreachable subgraph, composition errors) land here.
      const causes = err && Array.isArray(err.causes) ? err.causes.map((c) => String(c.message ?? c)) : [];
      emit({ type: 'composition-error', message: String(err && err.message ? err.message : err), causes });
      return 1;
    }
    cleanups.push(() => server.stop());
    emit({ type: 'composed', subgraphs, gatewayUrl, supergraphSdl });

    for (const [name, query] of [
      ['DatasetsWithReviews', DATASETS_WITH_REVIEWS],
      ['FeaturedDataset', FEATURED_DATASET],
    ]) {
      const { httpStatus, body } = await postGraphQL(gatewayUrl, name, query);
      const errors = body.errors ?? null;
      if (httpStatus !== 200 || (errors && errors.length) || !body.data) ok = false;
      emit({ type: 'operation', name, httpStatus, data: body.data ?? null, errors });
    }
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        console.error('[cleanup]', err);
      }
    }
  }
  emit({ type: 'summary', ok, featuredId, entityReferencesResolved: resolvedIds });
  return ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error('gateway.mjs:', err && err.stack ? err.stack : err);
    process.exitCode = 1;
  },
);
