package sdk

// Versions of this SDK and of the wire protocol it speaks. ProtocolVersion is
// bumped on any breaking change to sweetspot.stage.v1 or its semantics.
const (
	SDKVersion      = "0.1.0"
	ProtocolVersion = 1
)
