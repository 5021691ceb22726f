"""The agentsec NemoClaw stand-in's modules (compiled into dist/lib by `npm run build:cli`)."""
