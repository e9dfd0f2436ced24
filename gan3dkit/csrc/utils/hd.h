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

// `#pragma omp simd reduction(+ : acc)` for the loop that follows, on the host compiler with OpenMP (the CPU
// launchers build with -fopenmp); nothing in device code. Without it GCC keeps float reductions sequential.
#define GAN3DKIT_PRAGMA(x) _Pragma(#x)
#if defined(_OPENMP) && !defined(__CUDA_ARCH__)
#define GAN3DKIT_SIMD_SUM(acc) GAN3DKIT_PRAGMA(omp simd reduction(+ : acc))
#define GAN3DKIT_SIMD GAN3DKIT_PRAGMA(omp simd)
#else
#define GAN3DKIT_SIMD_SUM(acc)
#define GAN3DKIT_SIMD
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
