#include "backends/cuda/cuda_stream.h"

#include "backends/cuda/cuda_check.h"

namespace v4::cuda {

Stream::Stream(int device) {
  V4_CUDA_CHECK(cudaSetDevice(device));
  // Non-blocking: no implicit ordering with the legacy default stream other code may use.
  V4_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking));
}
Stream::~Stream() { cudaStreamDestroy(s_); }
void Stream::synchronize() const { V4_CUDA_CHECK(cudaStreamSynchronize(s_)); }

Event::Event() { V4_CUDA_CHECK(cudaEventCreateWithFlags(&e_, cudaEventDisableTiming)); }
Event::~Event() { cudaEventDestroy(e_); }
void Event::record(const Stream& s) { V4_CUDA_CHECK(cudaEventRecord(e_, s.get())); }
void Event::wait_on(const Stream& s) const { V4_CUDA_CHECK(cudaStreamWaitEvent(s.get(), e_, 0)); }
void Event::synchronize() const { V4_CUDA_CHECK(cudaEventSynchronize(e_)); }

PinnedBuffer::PinnedBuffer(size_t bytes) : n_(bytes) {
  V4_CUDA_CHECK(cudaMallocHost(&p_, bytes == 0 ? 1 : bytes));
}
PinnedBuffer::~PinnedBuffer() {
  if (p_) cudaFreeHost(p_);
}

}  // namespace v4::cuda
