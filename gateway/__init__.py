"""The edge gateway: reads a reader's serial port (or accepts a station's TCP connection),
decodes its protocol with a driver, folds reads into sightings, spools them on disk and
publishes them to MQTT until the centre's receipt covers them.

The gateway never imports the centre's packages (ingest, tracker, api)."""
