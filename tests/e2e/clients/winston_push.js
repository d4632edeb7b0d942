// Pushes `count` lines `winston line <i>` to Loki with winston + winston-loki,
// which sends protobuf compressed with snappy. Exits 1 if any push fails.
// Usage: node winston_push.js <url> '<labels json>' <count>
const [url, labelsJson, count] = process.argv.slice(2)

require('snappy') // winston-loki silently falls back to JSON without it
const winston = require('winston')
const LokiTransport = require('winston-loki')

let failure = null
const transport = new LokiTransport({
  host: url,
  labels: JSON.parse(labelsJson),
  json: false,
  interval: 0.1,
  gracefulShutdown: false,
  clearOnError: true,
  format: winston.format.printf(info => info.message),
  onConnectionError: err => { failure = err }
})
const logger = winston.createLogger({ level: 'info', transports: [transport] })

async function main () {
  for (let i = 0; i < Number(count); i++) {
    logger.info(`winston line ${i}`)
    if (i % 50 === 49) await new Promise(resolve => setTimeout(resolve, 20)) // spread over several pushes
  }
  await transport.close()
  if (failure) {
    console.error(`push failed: ${failure.message}`)
    process.exit(1)
  }
}

main()
