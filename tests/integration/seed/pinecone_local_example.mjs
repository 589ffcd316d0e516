// The JavaScript example of Pinecone's "CI/CD with Pinecone Local" guide
// (seed 000, "1. Write your tests"), run with node against `vecstore serve`
// and the official @pinecone-database/pinecone 9.0.0.
//
// Changes to the seed's code, and only these: the server URL comes from
// process.env.VECSTORE_URL; with FILL=import the upserts are replaced by
// imports of the same records; `upsert([...])` is SDK 9's
// `upsert({ records: [...] })` (the seed was written for SDK 5 / 6, whose
// upsert took an array: test_server_seed.py runs the seed's code verbatim
// with SDK 6.1.4 too); the sparse records come from the test; results are
// printed as one JSON line.
import { Pinecone } from '@pinecone-database/pinecone';

const url = process.env.VECSTORE_URL;
const fillByImport = process.env.FILL === 'import';
const out = {};

const pc = new Pinecone({
    apiKey: 'pclocal',
    controllerHostUrl: url
});

const denseIndexName = 'dense-index';
const sparseIndexName = 'sparse-index';

const denseIndexModel = await pc.createIndex({
  name: denseIndexName,
  vectorType: 'dense',
  dimension: 2,
  metric: 'cosine',
  spec: { serverless: { cloud: 'aws', region: 'us-east-1' } },
  deletionProtection: 'disabled',
  tags: { environment: 'development' },
});
out.denseIndexModel = denseIndexModel;

const sparseIndexModel = await pc.createIndex({
    name: sparseIndexName,
    vectorType: 'sparse',
    metric: 'dotproduct',
    spec: { serverless: { cloud: 'aws', region: 'us-east-1' } },
    deletionProtection: 'disabled',
    tags: { environment: 'development' },
  });
out.sparseIndexModel = sparseIndexModel;

const denseIndexHost = (await pc.describeIndex(denseIndexName)).host;
const denseIndex = await pc.index(denseIndexName, 'http://' + denseIndexHost);
const sparseIndexHost = (await pc.describeIndex(sparseIndexName)).host;
const sparseIndex = await pc.index(sparseIndexName, 'http://' + sparseIndexHost);

if (fillByImport) {
  // the test imports the seed's records from local Parquet files
  for (const [index, dir] of [[denseIndex, process.env.DENSE_DIR], [sparseIndex, process.env.SPARSE_DIR]]) {
    const op = await index.startImport({ uri: dir });
    for (;;) {
      const job = await index.describeImport(op.id);
      if (['Completed', 'Failed', 'Cancelled'].includes(job.status)) {
        if (job.status !== 'Completed') throw new Error(`import ${op.id}: ${job.status} ${job.error}`);
        break;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  }
} else {
  await denseIndex.namespace('example-namespace').upsert({ records: [
      { id: 'vec1', values: [1.0, -2.5], metadata: { genre: 'drama' } },
      { id: 'vec2', values: [3.0, -2.0], metadata: { genre: 'documentary' } },
      { id: 'vec3', values: [0.5, -1.5], metadata: { genre: 'documentary' } }
  ] });
  const seedSparse = JSON.parse(process.env.SPARSE_RECORDS);
  await sparseIndex.namespace('example-namespace').upsert({ records: seedSparse });
}

out.denseStats = await denseIndex.describeIndexStats();
out.sparseStats = await sparseIndex.describeIndexStats();

out.denseQueryResponse = await denseIndex.namespace('example-namespace').query({
    vector: [3.0, -2.0],
    filter: { 'genre': {'$eq': 'documentary'} },
    topK: 1,
    includeValues: false,
    includeMetadata: true,
});

out.sparseQueryResponse = await sparseIndex.namespace('example-namespace').query({
    sparseVector: {
        indices: [767227209, 1640781426, 1690623792, 2021799277, 2152645940, 2295025838, 2443437770, 2779594451, 2956155693, 3476647774, 3818127854, 4283091697],
        values: [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    },
    topK: 1,
    includeValues: false,
    includeMetadata: true
});

await pc.deleteIndex(denseIndexName);
await pc.deleteIndex(sparseIndexName);
out.left = (await pc.listIndexes()).indexes?.map((i) => i.name) ?? [];
console.log(JSON.stringify(out));
