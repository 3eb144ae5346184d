// PLACEHOLDER: the JIT's small interface (see the JIT issue).
#pragma once
