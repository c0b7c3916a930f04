// tulipa::postgres, the asynchronous PostgreSQL driver on libpq: everything in one include.
// Link tulipa::postgres (CMake: find_package(tulipa COMPONENTS postgres)) or pkg-config tulipa-postgres.
#pragma once

#include "tulipa/postgres/connection.hpp"
#include "tulipa/postgres/copy.hpp"
#include "tulipa/postgres/error.hpp"
#include "tulipa/postgres/listener.hpp"
#include "tulipa/postgres/pool.hpp"
#include "tulipa/postgres/result.hpp"
#include "tulipa/postgres/transaction.hpp"
#include "tulipa/postgres/types.hpp"
