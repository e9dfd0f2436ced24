// SPDX-License-Identifier: Apache-2.0
// What makes one kernel body serve both compilers: GAN3DKIT_HD marks a per-item function __host__ __device__ under
// nvcc and plain inline under the host compiler, and the few primitives whose spelling differs (atomics, bit casts)
// live here once. A .cpp launcher and a .cu launcher call the same GAN3DKIT_HD function, so the CPU parity tests
// exercise the arithmetic the GPU runs.
#pragma once
#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#define GAN3DKIT_HD __host__ __device__ __forceinline__
#else
#define GAN3DKIT_HD inline
#endif

namespace gan3dkit {

// The one accumulation helper of every scatter: atomicAdd on the device; a plain add on the host, where each CPU
// launcher gives every thread its own accumulator (partitioned buffers), so no two threads write one address.
template <typename T>
GAN3DKIT_HD void atomic_add(T* address, T value) {
#ifdef __CUDA_ARCH__
  atomicAdd(address, value);
#else
  *address += value;
#endif
}

// Reinterprets the bits of a 32-bit integer as a float.
GAN3DKIT_HD float bits_to_float(int32_t bits) {
#ifdef __CUDA_ARCH__
  return __int_as_float(bits);
#else
  float out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
#endif
}

}  // namespace gan3dkit
