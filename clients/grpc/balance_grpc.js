#!/usr/bin/env node
// balance_grpc.js: a customer's DOKU wallet balance through doku-bridged with
// stock gRPC for Node.js (npm's @grpc/grpc-js and @grpc/proto-loader), no
// doku-bridge library: wallet.proto is loaded at run time.
//
//     node balance_grpc.js CUSTOMER_REF PARTNER_REFERENCE_NO
//
// The socket is $DOKU_BRIDGE_SOCKET, or /run/doku-bridge/bridge.sock; the
// contract's directory $DOKU_PROTO_DIR, or ./proto. The customer session
// CUSTOMER_REF must have been opened (OpenCustomerSession).
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const socket = process.env.DOKU_BRIDGE_SOCKET || '/run/doku-bridge/bridge.sock';
const definition = protoLoader.loadSync('doku/wallet/v1/wallet.proto', {
  includeDirs: [process.env.DOKU_PROTO_DIR || 'proto'], longs: String, enums: String,
});
const { Wallet } = grpc.loadPackageDefinition(definition).doku.wallet.v1;

function main(customerRef, partnerRef) {
  const wallet = new Wallet('unix://' + socket, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('x-doku-customer-ref', customerRef); // and x-doku-profile
  let balance = null;
  const call = wallet.GetBalance({ partnerReferenceNo: partnerRef }, metadata,
    { deadline: Date.now() + 10000 }, // grpc-timeout: the deadline
    (err, r) => {
      if (err) {
        // the trailers: x-doku-outcome DONE, NOT_DONE, or UNKNOWN (it may have
        // happened: ask the status method with the same partner reference, never resend)
        const facts = err.metadata ? err.metadata.getMap() : {};
        console.error(`balance: ${grpc.status[err.code]} ${err.details} ` +
          `(responseCode ${facts['x-doku-response-code'] || '-'}, ` +
          `outcome ${facts['x-doku-outcome'] || '-'})`);
        process.exitCode = facts['x-doku-outcome'] === 'UNKNOWN' ? 3 : 1;
        wallet.close();
        return;
      }
      balance = r;
    });
  call.on('status', (status) => { // after the answer, with the trailing metadata
    if (status.code !== grpc.status.OK) return;
    const facts = status.metadata.getMap();
    const amount = balance.accountInfo.amount;
    console.log(`${balance.name}: ${amount.value} ${amount.currency} ` +
      `(X-EXTERNAL-ID ${facts['x-doku-external-id']}, outcome ${facts['x-doku-outcome']})`);
    wallet.close();
  });
}

if (process.argv.length !== 4) {
  console.error('usage: balance_grpc.js CUSTOMER_REF PARTNER_REFERENCE_NO');
  process.exit(2);
}
main(process.argv[2], process.argv[3]);
