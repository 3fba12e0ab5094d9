package server

import "github.com/creditledger/creditledger/api"

// Routes lists every HTTP route pattern the process serves (http.ServeMux syntax, in
// registration order); none without HTTP. The OpenAPI test checks each is documented.
func (s *Server) Routes() []string {
	if s.http == nil {
		return nil
	}
	if r, ok := s.http.Handler.(api.Router); ok {
		return r.Routes()
	}
	return nil
}
